"""Compressed generators: the GAN Compression "sub-mobile" ResNet and its released checkpoints.

Registers a weights adapter that recognises that project's state_dicts (depthwise-separable
residual blocks, ``conv_block.1.conv.0``) and maps them onto the core ``mobile_resnet``
architecture, so ``--weights`` takes such a file as it is.
"""

from cycletools import hookimpl


def gan_compression_adapter(state_dict):
    from cycletools.models.mobile import MobileResnetGenerator

    config = MobileResnetGenerator.infer_config(state_dict)
    return None if config is None else (state_dict, config)


@hookimpl
def register_weights_adapters(register):
    register("gan-compression", gan_compression_adapter)
