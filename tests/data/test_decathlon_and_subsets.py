"""The Visual Decathlon source (the devkit's COCO-style annotation files, generated here), class
subsets relabelled in order, and joined splits ("train+val")."""

import json

import numpy as np
import pytest
from PIL import Image

from bl_keras.data import build_dataset


def _write_domain(root, domain, split, labels, category_base=10001):
    """`labels`: one class index per image; categories numbered from `category_base` as the
    devkit numbers them."""
    images, annotations = [], []
    for i, label in enumerate(labels):
        name = f"data/{domain}/{split}/{i:07d}.png"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # The image's pixel value encodes its label, so the test can check the pairing.
        Image.fromarray(np.full((8, 10, 3), 20 * label, np.uint8)).save(path)
        image_id = 5000 + 7 * i  # ids unordered relative to the annotation list below
        images.append({"id": image_id, "file_name": name, "width": 10, "height": 8})
        annotations.append({"id": i, "image_id": image_id, "category_id": category_base + label})
    categories = [{"id": category_base + c, "name": f"class{c}"} for c in range(max(labels) + 1)]
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations" / f"{domain}_{split}.json").write_text(json.dumps(
        {"images": images, "annotations": annotations[::-1], "categories": categories}))


@pytest.fixture(scope="module")
def decathlon(tmp_path_factory):
    root = tmp_path_factory.mktemp("decathlon")
    _write_domain(root, "aircraft", "train", [0, 1, 2, 3, 1, 2, 0, 3, 2])
    _write_domain(root, "aircraft", "val", [3, 2, 1, 0])
    return root


def _read(root, split, **options):
    info = build_dataset("decathlon", str(root), split, training=False, batch_size=100,
                         image_size=8, seed=0, eval_crop_fraction=1.0, domain="aircraft",
                         **options)
    images, labels = next(iter(info.dataset))
    return info, images.numpy(), labels.numpy()


def test_decathlon_domain_reads_labels_paired_with_their_images(decathlon):
    info, images, labels = _read(decathlon, "train")
    assert info.num_examples == 9 and info.num_classes == 4
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2, 2, 3, 3]
    # Normalised pixel values increase with the label each image was drawn with.
    brightness = images.mean(axis=(1, 2, 3))
    order = np.argsort(brightness)
    assert np.all(np.diff(labels[order]) >= 0)
    info, _, labels = _read(decathlon, "val")
    assert info.num_examples == 4 and sorted(labels.tolist()) == [0, 1, 2, 3]


def test_train_plus_val_and_class_subsets(decathlon):
    info, _, labels = _read(decathlon, "train+val")
    assert info.num_examples == 13 and len(labels) == 13
    info, _, labels = _read(decathlon, "train", classes=[3, 1])
    assert info.num_examples == 4 and info.num_classes == 2
    assert sorted(labels.tolist()) == [0, 0, 1, 1]  # class 3 -> 0, class 1 -> 1
    info, _, labels = _read(decathlon, "train+val", classes=[2])
    assert info.num_examples == 4 and labels.tolist() == [0, 0, 0, 0]


def test_subset_training_stream_repeats_only_its_classes(decathlon):
    info = build_dataset("decathlon", str(decathlon), "train", training=True, batch_size=16,
                         image_size=8, seed=0, domain="aircraft", classes=[0, 3])
    labels = np.concatenate([l.numpy() for _, l in info.dataset.take(3)])
    assert info.num_examples == 4 and set(labels.tolist()) == {0, 1}


@pytest.mark.parametrize("options,error,message", [
    (dict(domain=None), ValueError, "needs a domain"),
    (dict(domain="dtd"), FileNotFoundError, "dtd_train.json: no such annotation file"),
    (dict(domain="aircraft", classes=[0, 9]), ValueError, "outside the source's 4 classes"),
    (dict(domain="aircraft", classes=[1, 1]), ValueError, "distinct"),
])
def test_decathlon_errors_name_the_problem(decathlon, options, error, message):
    with pytest.raises(error, match=message):
        build_dataset("decathlon", str(decathlon), "train", training=False, batch_size=4,
                      image_size=8, seed=0, **options)


def test_a_corrupt_annotation_file_is_named(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "svhn_train.json").write_text("{not json")
    with pytest.raises(ValueError, match="svhn_train.json: not a JSON annotation file"):
        build_dataset("decathlon", str(tmp_path), "train", training=False, batch_size=4,
                      image_size=8, seed=0, domain="svhn")
    (tmp_path / "annotations" / "svhn_train.json").write_text('{"images": []}')
    with pytest.raises(ValueError, match="not a Visual Decathlon annotation file"):
        build_dataset("decathlon", str(tmp_path), "train", training=False, batch_size=4,
                      image_size=8, seed=0, domain="svhn")
