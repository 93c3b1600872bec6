"""Fixtures of the export tests: request images and a small ImageFolder tree."""

import pytest

from bl_keras.data.demo import make_demo_dataset
from tests.export.helpers import IMAGE_SIZE, encoded_image


@pytest.fixture(scope="session")
def request_images():
    """Encoded images of different sizes and formats, as a request would bring them."""
    return [
        encoded_image(90, 70, "JPEG", seed=1, shape="square"),
        encoded_image(64, 120, "PNG", seed=2, shape="ring", texture="checker"),
        encoded_image(150, 150, "PNG", seed=3, shape="cross"),
        encoded_image(73, 96, "JPEG", seed=4, shape="triangle", texture="checker"),
    ]


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """A small ImageFolder tree of 64x64 PNGs: 4 classes x (6 train + 3 val) images."""
    root = tmp_path_factory.mktemp("images")
    make_demo_dataset(str(root), num_classes=4, train_per_class=6, val_per_class=3,
                      image_size=IMAGE_SIZE, seed=0)
    return root
