"""Network definitions: the CycleGAN ResNet generator and the PatchGAN discriminator."""

from cycletools.models.discriminator import NLayerDiscriminator
from cycletools.models.generator import ResnetGenerator
from cycletools.models.init import init_weights

__all__ = [
    "NLayerDiscriminator",
    "ResnetGenerator",
    "init_weights",
]
