"""Pipelines: what users call to translate images and to train domain pairs."""
