"""Shared fixtures: the service fixtures of each area are pytest plugins in tests/helpers/ (chain, IPFS, federation)."""
pytest_plugins = ["helpers.fixtures_chain", "helpers.fixtures_ipfs", "helpers.fixtures_federation"]
