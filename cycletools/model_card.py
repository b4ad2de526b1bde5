"""The model card published with a generator (``cycletools weights push``): the Hub's ``README.md``, YAML front
matter (library, tags, licence, datasets, FID/KID where ``cycletools eval`` measured them) and a body that says what
the generator translates, how it was trained, how good it is and the command that uses it."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cycletools.domains import DomainSpec, summarize_architecture
from cycletools.errors import CycletoolsError, one_line

TAGS = ("cyclegan", "image-to-image", "unpaired-image-translation", "cycletools")
RECIPE_KEYS = ("recipe", "size", "batch_size", "epochs", "epochs_decay", "lr", "lambda_cycle", "lambda_identity",
               "amp", "seed")


@dataclass
class CardFacts:
    """What the card says; each field may be unknown (None), and the card then says so."""

    repo_id: str
    filename: str
    architecture: dict[str, Any]
    parameters: int
    revision: str | None = None
    domain: DomainSpec | None = None
    direction: str | None = None
    run: dict[str, Any] | None = None         # the run's config.json
    steps: int | None = None
    hardware: str | None = None
    evaluation: list[dict[str, Any]] = field(default_factory=list)  # the results of a cycletools eval report
    license: str = "other"
    datasets: list[str] = field(default_factory=list)               # Hub dataset ids
    origin: str | None = None

    @property
    def hub_name(self) -> str:
        return f"hf://{self.repo_id}/{self.filename}" + (f"@{self.revision}" if self.revision else "")


def run_facts(run_dir: Path) -> tuple[dict[str, Any] | None, int | None]:
    """A training run's settings (config.json) and the last step it logged (losses.csv); None where absent."""
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        config = None
    steps = None
    try:
        with open(run_dir / "losses.csv", newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                steps = int(row["step"]) if str(row.get("step", "")).isdigit() else steps
    except OSError:
        pass
    return config, steps


def read_evaluation(path: str | Path) -> list[dict[str, Any]]:
    """The results of a ``cycletools eval --out REPORT.json``; one error line for a file that is not one."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        results = report["results"]
        if not isinstance(results, list) or not all(isinstance(r, dict) and "fid" in r for r in results):
            raise TypeError
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise CycletoolsError(f"{path}: not a report of 'cycletools eval --out FILE'") from None
    return [{"split": report.get("split") or "test", **entry} for entry in results]


def check_evaluated(evaluation: list[dict[str, Any]], weights: Path, report: str | Path | None) -> None:
    """One error line where the report measured another generator than ``weights`` (its SHA-256 differs)."""
    from cycletools.utils.files import file_sha256

    measured = {entry.get("weights_sha256") for entry in evaluation} - {None}
    if not measured:
        return
    digest = file_sha256(weights)
    other = next((value for value in measured if value != digest), None)
    if other is not None:
        raise CycletoolsError(f"{report} measured another generator (SHA-256 {str(other)[:12]}…) than {weights} "
                              f"({digest[:12]}…): evaluate the generator you push, with 'cycletools eval --weights "
                              f"{weights} ... --out REPORT'")


def card_text(facts: CardFacts) -> str:
    """The README.md: the Hub's front matter, then the body."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    domain = facts.domain
    tags = [*TAGS, *([domain.name] if domain else [])]
    results = [EvalResult(task_type="image-to-image", task_name="Unpaired image-to-image translation",
                          dataset_type=(facts.datasets[0] if facts.datasets else entry.get("plugin") or "images"),
                          dataset_name=f"{entry.get('plugin') or 'images'} {entry.get('split', 'test')}",
                          dataset_split=entry.get("split", "test"), metric_type=metric, metric_name=label,
                          metric_value=entry[metric])
               for entry in facts.evaluation for metric, label in (("fid", "FID"), ("kid", "KID"))
               if isinstance(entry.get(metric), (int, float))]
    data = ModelCardData(library_name="cycletools", license=facts.license, tags=tags,
                         datasets=facts.datasets or None, pipeline_tag="image-to-image",
                         model_name=facts.repo_id.split("/")[-1] if results else None, eval_results=results or None)
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{_body(facts)}"))


def _body(facts: CardFacts) -> str:
    domain, run = facts.domain, facts.run or {}
    title = domain.title if domain else "a CycleGAN generator"
    lines = [f"# {facts.repo_id.split('/')[-1]}: {title}", "",
             "An unpaired image-to-image translation generator (CycleGAN) for cycletools, in safetensors with its "
             "architecture in the header.",
             "", "## Use it", "", "```bash",
             f"cycletools translate photo.jpg --weights {facts.hub_name} --download -o translated.png", "```", "",
             f"The first run downloads `{facts.filename}` into the cycletools cache; later runs, offline too, use that "
             "copy. `--weights` takes the same name in `video`, `webcam`, `serve`, `eval`, `distill`, `export` and "
             "`weights import`.", "", "## The generator", "",
             f"- Domain: {_domain_text(facts)}",
             f"- Architecture: {summarize_architecture(facts.architecture)}, {facts.parameters:,} parameters",
             f"- Training recipe: {_recipe_text(run)}",
             f"- Steps: {facts.steps:,}" if facts.steps is not None else "- Steps: not recorded",
             f"- Hardware: {one_line(facts.hardware) if facts.hardware else 'not recorded'}"]
    if facts.origin:
        lines.append(f"- Origin: {one_line(facts.origin)}")
    lines += ["", "## Quality", ""]
    if facts.evaluation:
        lines += ["Measured by `cycletools eval` (FID and KID on Inception-v3 features; lower is better):", "",
                  "| direction | split | FID | KID×10³ | classifier share |", "|---|---|---|---|---|"]
        for entry in facts.evaluation:
            kid, share = entry.get("kid"), (entry.get("classifier") or {}).get("share")
            kid_text = f"{1000 * kid:.2f}" if isinstance(kid, (int, float)) else "–"
            share_text = f"{share:.1%}" if isinstance(share, (int, float)) else "–"
            lines.append(f"| {entry.get('direction', '?')} | {entry.get('split', 'test')} | {entry['fid']:.2f} | "
                         f"{kid_text} | {share_text} |")
    else:
        plugin = facts.domain.name if facts.domain else "NAME"
        lines.append(f"Not measured yet: `cycletools eval --weights {facts.hub_name} --download --plugin {plugin} "
                     "--data DATASET --out report.json` measures FID and KID.")
    return "\n".join(lines) + "\n"


def _domain_text(facts: CardFacts) -> str:
    domain = facts.domain
    if domain is None:
        return "not named"
    source, target = (domain.target, domain.source) if facts.direction == "b2a" else (domain.source, domain.target)
    text = f"{domain.name}: {source} → {target}"
    return text + (f" (the run's {facts.direction} generator)" if facts.direction else "")


def _recipe_text(run: dict[str, Any]) -> str:
    if not run:
        return "not recorded"
    settings = ", ".join(f"{key} {run[key]}" for key in RECIPE_KEYS if run.get(key) is not None)
    data = Path(str(run["data"])).name if run.get("data") else None
    return settings + (f"; trained on {data}" if data else "")
