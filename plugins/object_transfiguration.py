"""Object transfiguration: horse ↔ zebra and apple ↔ orange (ImageNet classes)."""

from cycletools import DomainSpec, hookimpl
from cycletools_plugins import OFFICIAL_DATASETS, bundled, official_sources

PAIRS = [
    # (A→B name, B→A name, A, B, dataset, A→B description, B→A description, ImageNet classes of A and B)
    ("horse2zebra", "zebra2horse", "horse", "zebra", "horse2zebra",
     "Paints zebra stripes on horses; backgrounds mostly kept.",
     "Removes zebra stripes, giving brown horse coats.", (339, 340)),  # sorrel, zebra
    ("apple2orange", "orange2apple", "apple", "orange", "apple2orange",
     "Gives apples the colour and skin texture of oranges.",
     "Gives oranges the colour and sheen of apples.", (948, 950)),  # Granny Smith, orange
]


@hookimpl
def register_domains(register):
    for forward, backward, a, b, dataset, a2b_text, b2a_text, (class_a, class_b) in PAIRS:
        url = OFFICIAL_DATASETS.format(name=dataset)
        for name, reverse, source, target, direction, text, target_class in (
                (forward, backward, a, b, "a2b", a2b_text, class_b),
                (backward, forward, b, a, "b2a", b2a_text, class_a)):
            register(DomainSpec(
                name=name, reverse=reverse, family="object", title=f"{source.capitalize()} → {target}",
                source=source, target=target, description=text, sources=official_sources(name),
                bundled=bundled(name), run_direction=direction, inference_size=256,
                imagenet_class=target_class, dataset=url))
