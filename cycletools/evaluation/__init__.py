"""Offline quality metrics: FID/KID on Inception features, an ImageNet classifier score, cycle error."""
