"""Season transfer: Yosemite summer ↔ winter (the paper's season-transfer results)."""

from cycletools import DomainSpec, hookimpl
from plugins import OFFICIAL_DATASETS, bundled, official_sources

DATASET = OFFICIAL_DATASETS.format(name="summer2winter_yosemite")


@hookimpl
def register_domains(register):
    register(DomainSpec(
        name="summer2winter_yosemite", reverse="winter2summer_yosemite", family="season",
        title="Summer → winter", source="summer", target="winter",
        description="Turns summer landscapes (Yosemite, Flickr) wintry: snow, bare trees, cold light.",
        sources=official_sources("summer2winter_yosemite"), bundled=bundled("summer2winter_yosemite"),
        run_direction="a2b", inference_size=256, dataset=DATASET))
    register(DomainSpec(
        name="winter2summer_yosemite", reverse="summer2winter_yosemite", family="season",
        title="Winter → summer", source="winter", target="summer",
        description="Turns winter landscapes summery: green meadows and foliage instead of snow.",
        sources=official_sources("winter2summer_yosemite"), bundled=bundled("winter2summer_yosemite"),
        run_direction="b2a", inference_size=256, dataset=DATASET))
