"""Season transfer: Yosemite summer ↔ winter (the paper's season-transfer results)."""

from cycletools import DomainSpec, hookimpl
from cycletools_plugins import OFFICIAL_DATASETS, bundled, official_sources

DATASET = OFFICIAL_DATASETS.format(name="summer2winter_yosemite")
SEASONS = [
    # (name, reverse, source, target, generator of a summer2winter run, what it does)
    ("summer2winter_yosemite", "winter2summer_yosemite", "summer", "winter", "a2b",
     "Turns summer landscapes (Yosemite, Flickr) wintry: snow, bare trees, cold light."),
    ("winter2summer_yosemite", "summer2winter_yosemite", "winter", "summer", "b2a",
     "Turns winter landscapes summery: green meadows and foliage instead of snow."),
]


@hookimpl
def register_domains(register):
    for name, reverse, source, target, direction, text in SEASONS:
        register(DomainSpec(
            name=name, reverse=reverse, family="season", title=f"{source.capitalize()} → {target}",
            source=source, target=target, description=text, sources=official_sources(name),
            bundled=bundled(name), run_direction=direction, inference_size=256, dataset=DATASET))
