"""Opt-in Byzantine behaviours for experiments; honest nodes never construct them."""
