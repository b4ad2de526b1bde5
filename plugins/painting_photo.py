"""Painting ↔ photo: Monet paintings to photos (identity loss keeps the colours), photo styles.

The style models translate landscape photos into the manner of Monet, Cézanne, Ukiyo-e
and Van Gogh; each is the photo → painting generator of a painting2photo pair.
"""

from cycletools import DomainSpec, hookimpl
from cycletools_plugins import OFFICIAL_DATASETS, bundled, official_sources

# The paper's painting → photo models use the identity loss (weight 0.5 × λ_cycle), which
# keeps the colour composition of the input instead of shifting it toward the photo set's.
PAINTING_RECIPE = {"lambda_identity": 0.5}

STYLES = {
    "monet": ("Monet", "monet2photo"),
    "cezanne": ("Cézanne", "cezanne2photo"),
    "ukiyoe": ("Ukiyo-e", "ukiyoe2photo"),
    "vangogh": ("Van Gogh", "vangogh2photo"),
}


@hookimpl
def register_domains(register):
    register(DomainSpec(
        name="monet2photo", family="painting", title="Monet painting → photo",
        source="Monet painting", target="photo", reverse="style_monet",
        description="Renders Monet's paintings as photographs; trained with identity loss "
                    "(λ_idt = 0.5) so colours stay those of the painting.",
        sources=official_sources("monet2photo"), bundled=bundled("monet2photo"), run_direction="a2b",
        train_defaults=PAINTING_RECIPE, inference_size=256, dataset=OFFICIAL_DATASETS.format(name="monet2photo")))
    for key, (artist, dataset) in STYLES.items():
        name = f"style_{key}"
        register(DomainSpec(
            name=name, family="painting", title=f"Photo → {artist} style",
            source="photo", target=f"{artist} painting",
            reverse="monet2photo" if key == "monet" else None,
            description=f"Paints landscape photos in the style of {artist}'s works.",
            sources=official_sources(name), bundled=bundled(name), run_direction="b2a",
            train_defaults=PAINTING_RECIPE, inference_size=256,
            dataset=OFFICIAL_DATASETS.format(name=dataset)))
