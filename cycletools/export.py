"""Export generators to ONNX or TorchScript, and run ONNX exports with ONNX Runtime or OpenVINO.

An export takes and returns NCHW float tensors in [-1, 1] whose height and width are
multiples of 4 (the Translator pads any image to that and crops back), either of one fixed
size or, with ``dynamic``, of any size.
"""

from __future__ import annotations

import contextlib
import functools
import io
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cycletools.errors import CycletoolsError, first_line
from cycletools.utils.optional import require
from cycletools.utils.atomic import atomic_path

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
PARITY_TOLERANCE = 1e-3


def export_generator(generator: nn.Module, path: str | Path, fmt: str = "onnx", size: int = 256,
                     dynamic: bool = False) -> Path:
    """Write ``generator`` as ONNX (opset 18, dynamic H/W if asked) or TorchScript, atomically."""
    if fmt not in FORMATS:
        raise CycletoolsError(f"unknown export format {fmt!r}; choose {' or '.join(FORMATS)}")
    if size < 8 or size % 4:
        raise CycletoolsError("the export size must be a multiple of 4, at least 8")
    path = Path(path)
    if not path.parent.is_dir():
        raise CycletoolsError(f"output folder does not exist: {path.parent}")
    generator = generator.eval().cpu()
    example = torch.zeros(1, 3, size, size)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            shapes = None
            if dynamic:
                shapes = ({0: torch.export.Dim("batch", min=1, max=1024),
                           2: 4 * torch.export.Dim("height_4", min=2, max=4096),
                           3: 4 * torch.export.Dim("width_4", min=2, max=4096)},)
            with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates its steps
                torch.onnx.export(generator, (example,), str(tmp), dynamo=True, dynamic_shapes=shapes,
                                  input_names=["image"], output_names=["translated"], external_data=False,
                                  verbose=False)
        else:
            with torch.no_grad():
                traced = torch.jit.trace(generator, example, check_trace=False)
            torch.jit.save(traced, str(tmp))
    return path


class OnnxGenerator(nn.Module):
    """An ONNX export run by ONNX Runtime, usable wherever a generator module is."""

    def __init__(self, path: str | Path, threads: int | None = None):
        super().__init__()
        ort = require("onnxruntime", "export", "the onnxruntime backend")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: spinning took the CPU from the video
        # pipeline's decode and encode threads (2-core CPU, medium student: 14.7 → 23.1 frames/s end to end).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise CycletoolsError(f"{path}: not a loadable ONNX model ({first_line(exc)})") from None
        self.path = Path(path)
        self.input_name = self.session.get_inputs()[0].name
        shape = self.session.get_inputs()[0].shape
        self.fixed_size = tuple(shape[2:]) if all(isinstance(d, int) for d in shape[2:]) else None

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if self.fixed_size is not None and tuple(batch.shape[2:]) != self.fixed_size:
            raise CycletoolsError(f"{self.path.name} takes {self.fixed_size[1]}×{self.fixed_size[0]} inputs only "
                                  f"(got {batch.shape[3]}×{batch.shape[2]}); export it with --dynamic-size")
        array = np.ascontiguousarray(batch.detach().cpu().float().numpy())
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


@functools.cache
def _openvino_core():
    """One OpenVINO Core for the whole process, never freed. Freeing the Cores of two generators unloaded
    OpenVINO's CPU plugin in a way that made the process crash (SIGSEGV) at its next Ctrl-C (OpenVINO 2026.4)."""
    return require("openvino", "openvino", "the openvino backend").Core()


class OpenVinoGenerator(nn.Module):
    """An ONNX export compiled by OpenVINO for the CPU (fp32), usable wherever a generator is.

    One image runs in latency mode, all threads on it. A batch of several (video frames) runs in
    throughput mode: each image on its own stream of one thread, the streams side by side, so no
    thread waits for another inside a layer. On the 2-core CPU with the bundled horse→zebra
    generator at 256² that gave 33–35 frames/s against 30–31 in latency mode, and it keeps more of
    that speed while the video pipeline decodes and encodes beside it (docs/speed.md).
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        super().__init__()
        self.path, self.threads = Path(path), threads
        self.compiled = self._compile("LATENCY", threads)
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()  # one caller at a time: the requests are not shared
        self.parallel = None          # throughput mode: one request per stream, made on the first batch

    def _compile(self, hint: str, threads: int | None, streams: int | None = None):
        config = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if streams:
            config["NUM_STREAMS"] = streams
        try:
            return _openvino_core().compile_model(str(self.path), "CPU", config)
        except Exception as exc:
            raise CycletoolsError(f"{self.path}: OpenVINO cannot compile it ({first_line(exc)})") from None

    @property
    def streams(self) -> int:
        """Throughput-mode streams: one per thread (--threads, else the CPU's physical cores)."""
        return max(1, self.threads or torch.get_num_threads())

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(batch.detach().cpu().float().numpy())
        with self.lock:
            if len(array) == 1 or self.streams == 1:
                return torch.from_numpy(np.array(self.request.infer({0: array})[0]))
            return torch.from_numpy(self._side_by_side(array))

    def _side_by_side(self, array: np.ndarray) -> np.ndarray:
        if self.parallel is None:
            compiled = self._compile("THROUGHPUT", self.streams, streams=self.streams)
            self.parallel = [compiled.create_infer_request() for _ in range(self.streams)]
        outputs = []
        for first in range(0, len(array), len(self.parallel)):  # one image per request, the requests side by side
            running = list(zip(self.parallel, array[first:first + len(self.parallel)]))
            for request, image in running:
                request.start_async({0: image[None]})
            for request, _ in running:
                request.wait()
                outputs.append(request.get_output_tensor(0).data.copy())
        return np.concatenate(outputs)


def load_exported(path: str | Path) -> nn.Module:
    """An exported generator: ONNX through ONNX Runtime, TorchScript through torch.jit."""
    path = Path(path)
    if not path.is_file():
        raise CycletoolsError(f"exported model not found: {path}")
    if path.suffix == ".onnx":
        return OnnxGenerator(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:
        raise CycletoolsError(f"{path}: not a loadable TorchScript model ({first_line(exc)})") from None


def parity(reference: nn.Module, exported: nn.Module, sizes: list[tuple[int, int]]) -> float:
    """Largest absolute difference between the two on random inputs of each (height, width)."""
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for height, width in sizes:
            x = torch.rand(1, 3, height, width, generator=generator) * 2 - 1
            worst = max(worst, float((reference(x) - exported(x)).abs().max()))
    return worst
