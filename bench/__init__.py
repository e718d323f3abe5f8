"""Benchmarks: each module writes JSON to bench/results/."""
