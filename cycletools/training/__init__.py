"""Training CycleGAN domain pairs: config, losses, image pools, checkpoints and the loop."""
