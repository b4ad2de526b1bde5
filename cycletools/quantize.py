"""int8 generators for the CPU: static post-training quantisation of an ONNX export with ONNX Runtime.

The convolutions get int8 weights (one scale per output channel) and uint8 activations (QDQ
format, 99.999th-percentile ranges), calibrated on images of the domain's own input side. The
stem and output convolutions, depthwise convolutions, InstanceNorm, the transposed convolutions
and tanh stay in float: quantising those too doubled the error on the compressed horse→zebra
generator (13.2 instead of 4.5 grey levels on average, 8 testA horses). Whether it pays depends on the CPU: int8 convolutions are
fast with VNNI (AVX512-VNNI, AVX-VNNI, AMX) and gain little elsewhere (see docs/speed.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from cycletools.errors import CycletoolsError
from cycletools.utils.optional import require

CALIBRATION_IMAGES = 32


def calibration_inputs(folder: str | os.PathLike, size: int = 256, count: int = CALIBRATION_IMAGES) -> list[np.ndarray]:
    """Up to ``count`` images of ``folder`` as 1×3×size×size float arrays in [-1, 1] (spread over the folder)."""
    from PIL import Image

    from cycletools.data.images import list_images, open_image, split_alpha

    if not Path(folder).exists():
        raise CycletoolsError(f"--calibrate {folder}: folder not found")
    if not Path(folder).is_dir():
        raise CycletoolsError(f"--calibrate {folder}: not a folder (give a folder of the domain's input side, "
                              "e.g. DATA/trainA)")
    files = list_images(folder).files
    if not files:
        raise CycletoolsError(f"--calibrate {folder}: no images there (give a folder of the domain's input side, "
                              "e.g. DATA/trainA)")
    chosen = files[:: max(1, len(files) // count)][:count]
    arrays = []
    for path in chosen:
        try:
            rgb = split_alpha(open_image(path))[0].resize((size, size), Image.Resampling.BICUBIC)
        except CycletoolsError:
            continue
        arrays.append((np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)[None] / 127.5 - 1).astype(np.float32))
    if not arrays:
        raise CycletoolsError(f"--calibrate {folder}: none of its images could be read")
    if len(arrays) < len(chosen):
        warnings.warn(f"--calibrate {folder}: {len(chosen) - len(arrays)} of {len(chosen)} images could not be read "
                      "and were skipped", stacklevel=2)
    return arrays


def calibration_key(folder: str | os.PathLike, count: int = CALIBRATION_IMAGES) -> str:
    """A short fingerprint of the calibration set (file names, sizes and times), for caching."""
    from cycletools.data.images import list_images

    digest = hashlib.sha256(str(count).encode())
    for path in list_images(folder).files if Path(folder).is_dir() else []:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def sensitive_convolutions(model_path: Path) -> list[str]:
    """The convolutions left in float: the first and last (image in, image out) and the depthwise ones."""
    import onnx

    convolutions = [node for node in onnx.load(str(model_path)).graph.node if node.op_type == "Conv"]
    depthwise = [node.name for node in convolutions
                 if next((a.i for a in node.attribute if a.name == "group"), 1) > 1]
    return [convolutions[0].name, convolutions[-1].name, *depthwise] if convolutions else []


def quantize_onnx(source: str | os.PathLike, target: str | os.PathLike, calibration: list[np.ndarray]) -> Path:
    """Write an int8 (QDQ) version of the fp32 ONNX generator ``source`` to ``target``, atomically."""
    require("onnxruntime", "export", "int8 quantisation")
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from cycletools.utils.atomic import atomic_path

    import onnxruntime as ort

    name = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    target = Path(target)
    quiet = logging.getLogger()  # the quantiser logs a warning per tensor it leaves alone
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as scratch, atomic_path(target) as tmp, \
            contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints its histogram settings
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=sensitive_convolutions(prepared),
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile, extra_options={"CalibPercentile": 99.999})
    quiet.setLevel(level)
    return target
