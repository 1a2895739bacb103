"""Experiments of the research groups, each a self-contained module with a config and `run`."""
