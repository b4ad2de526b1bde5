"""Bundled generators and their model cards (installed as the package cycletools_plugins.weights)."""
