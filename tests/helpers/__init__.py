"""Test helpers: service fixtures (loaded by tests/conftest.py as pytest plugins) and helper programs."""
