"""Example photos and their credits (installed as the package cycletools_plugins.examples)."""
