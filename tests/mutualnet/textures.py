"""A small ImageFolder set with coarse and fine labels: side x 2-pixel texture.

Four classes: a brighter top or bottom half (coarse: survives any downsampling; not left/right,
which training's horizontal flips would swap) x horizontal or
vertical stripes of period 2 pixels (fine: halving the resolution averages them away), on a
random colour with random contrast and noise. A sub-network at a low resolution can tell only
the half (at best 50%), the full network both, so a configuration's accuracy depends on its
resolution.
"""

import numpy as np
from PIL import Image

SIDES = ("top", "bottom")
STRIPES = ("horizontal", "vertical")
CLASSES = tuple(f"{side}_{stripes}" for side in SIDES for stripes in STRIPES)


def texture(side, stripes, size, rng):
    y, x = np.mgrid[:size, :size]
    pattern = (y if stripes == "horizontal" else x) % 2
    half = (y < size // 2) if side == "top" else (y >= size // 2)
    image = (rng.uniform(0.2, 0.6, 3) + rng.uniform(0.2, 0.3) * half[..., None]
             + rng.uniform(0.2, 0.35) * (pattern[..., None] - 0.5)
             + rng.normal(0, 0.05, (size, size, 3)))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def make_texture_dataset(root, train_per_class=64, val_per_class=24, size=32, seed=0):
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c, name in enumerate(CLASSES):
            side, stripes = name.split("_")
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                rng = np.random.default_rng((seed, split == "train", c, i))
                Image.fromarray(texture(side, stripes, size, rng)).save(folder / f"{i:04d}.png")
    return str(root)
