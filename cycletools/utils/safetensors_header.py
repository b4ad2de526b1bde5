"""A safetensors file's metadata, read from its JSON header alone (no torch, no safetensors import):
listing what is cached stays fast."""

from __future__ import annotations

import json
import os

from cycletools.errors import CycletoolsError

CONFIG_KEY = "cycletools.generator"  # where a cycletools weights file keeps its generator's config
HEADER_LIMIT = 100_000_000  # the largest header safetensors itself reads


def read_header_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file, read from its header alone: an 8-byte little-endian
    length, then that many bytes of JSON. Nothing else is read, and neither torch nor safetensors loads."""
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8).ljust(8, b"\0"), "little")
            if not 2 <= size <= HEADER_LIMIT:
                raise ValueError(f"a header of {size} bytes")
            raw = handle.read(size)
            if len(raw) < size:
                raise ValueError(f"the header is cut short at {len(raw)} of {size} bytes")
            header = json.loads(raw)
    except (OSError, ValueError) as exc:  # JSON and UTF-8 errors are ValueErrors
        raise CycletoolsError(f"{path}: not a readable safetensors file ({exc})") from None
    metadata = (header.get("__metadata__") or {}) if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CycletoolsError(f"{path}: not a readable safetensors file (its header is not a table of tensors "
                              "with string metadata)")
    return metadata
