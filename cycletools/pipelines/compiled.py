"""A generator's forward pass compiled with torch.compile (Inductor), for ``--backend compile``.

On the CPU, Inductor fuses the many small convolutions, normalisations and activations of the
compact generators: 1.7x eager PyTorch for the published compressed horse→zebra generator on
the 2-core CPU (see docs/speed.md). On CUDA it also captures the steps as CUDA graphs
("reduce-overhead"), whose outputs are reused by the next call, so they are copied out.

Compilation happens on the first call for each input shape (seconds; Inductor caches it on disk
for later runs, in a folder of cycletools' own per ``ATEN_CPU_CAPABILITY``: Inductor's cache key
leaves that variable out, and a graph cached under ``avx2`` aborted the process when it ran under the
CPU's native AVX-512 kernels). If it fails (no C++ compiler, an unsupported operator), one warning
says so and the generator runs uncompiled from then on.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import MutableMapping

import torch
from torch import nn

from cycletools.errors import first_line


def keep_inductor_cache_per_capability(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Point Inductor's on-disk cache at a folder for this ``ATEN_CPU_CAPABILITY``; return it.

    A cache folder the user chose (``TORCHINDUCTOR_CACHE_DIR``) is left alone, and None returned.
    """
    if environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return None
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    capability = re.sub(r"[^a-z0-9_]", "_", environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()) or "native"
    folder = os.path.join(default_cache_dir(), f"cycletools-aten-{capability}")
    environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    return folder


class CompiledGenerator:
    """Calls ``torch.compile(generator)``; the eager generator where compilation failed."""

    def __init__(self, generator: nn.Module, device: torch.device):
        self.generator = generator
        self.cuda_graphs = device.type == "cuda"
        # The C++ toolchain probe logs a CUDA_HOME notice on CPU-only machines: noise for users.
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        keep_inductor_cache_per_capability()
        self.compiled = torch.compile(generator, mode="reduce-overhead" if self.cuda_graphs else None)
        self.failure: str | None = None

    @property
    def active(self) -> bool:
        """False once compilation has failed and the eager generator runs instead."""
        return self.failure is None

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.failure is None:
            if torch.is_inference_mode_enabled() and not batch.is_inference():
                # A normal tensor fails the guards of a graph compiled for inference tensors: one
                # kind of input means one graph (a recompiled one ran at 0.6x the speed on the CPU).
                batch = batch.clone()
            try:
                output = self.compiled(batch)
            except Exception as exc:  # Inductor's errors have no common base class worth naming
                self.failure = first_line(exc, with_type=True)
                warnings.warn(f"torch.compile failed ({self.failure}); running the generator uncompiled",
                              stacklevel=2)
            else:
                return output.clone() if self.cuda_graphs else output
        return self.generator(batch)
