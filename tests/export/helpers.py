"""Small models and encoded test images for the export tests."""

import io

import keras
import numpy as np
from PIL import Image

import bl_keras
from bl_keras.data.demo import render

# A bL-ResNet small enough to export and convert in seconds; zero_init_residual=False so every
# residual branch contributes and outputs differ from image to image.
SMALL_BL = dict(classes=5, alpha=2, beta=2, stage_depths=(2, 2, 2, 2),
                stage_filters=(32, 32, 64, 64), stem_filters=8, zero_init_residual=False)
# bL-(SE-)ResNeXt: grouped 3x3 convolutions (cardinality 32, 16 in the little branch).
SMALL_BL_RESNEXT = dict(SMALL_BL, stage_filters=(64, 128, 256, 256))
IMAGE_SIZE = 64


def small_model(name="bl_resnet50", seed=0, **overrides):
    """A small registry model with seeded random weights."""
    keras.utils.set_random_seed(seed)
    options = SMALL_BL_RESNEXT if "resnext" in name else SMALL_BL
    return bl_keras.models.get(name, **dict(options, **overrides))


def encoded_image(height, width, fmt, seed=0, shape="disc", texture="stripes"):
    """A demo-dataset picture (shape and texture on noise) encoded as JPEG or PNG bytes."""
    side = max(height, width)
    pixels = render(np.random.default_rng(seed), shape, texture, side)[:height, :width]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()
