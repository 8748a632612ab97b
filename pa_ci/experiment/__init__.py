"""Experiments: the paper's pruning protocol for one run and the sweep over rates, scopes, methods and seeds."""
