"""The idx source (MNIST-format files) through build_dataset, its errors, and tfds
fashion_mnist under mock_data."""

import gzip

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from bl_keras.data import IMAGENET_MEAN, IMAGENET_STD, SOURCES, build_dataset
from bl_keras.data.idx import read_header
from tests.data.idx_files import IMAGES, LABELS, idx_bytes, write_idx, write_idx_set


def collect(info):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in info.dataset])
    return np.concatenate(images), np.concatenate(labels)


def unnormalise(images):
    return np.round((images * IMAGENET_STD + IMAGENET_MEAN) * 255).astype(int)


def evaluation(data_dir, split, **kwargs):
    return build_dataset("idx", data_dir, split, training=False, batch_size=5, image_size=28,
                         seed=0, eval_crop_fraction=1.0, **kwargs)


@pytest.mark.parametrize("compressed", [False, True])
def test_splits_give_the_files_images_replicated_to_3_channels(tmp_path, compressed):
    written = write_idx_set(tmp_path, train=12, test=5, classes=4, compressed=compressed)
    for split, prefix in (("train", "train"), ("val", "t10k"), ("test", "t10k")):
        info = evaluation(tmp_path, split)
        expected_images, expected_labels = written[prefix]
        assert (info.num_examples, info.num_classes) == (len(expected_labels), 4)
        images, labels = collect(info)
        assert images.shape == (len(expected_labels), 28, 28, 3)
        np.testing.assert_array_equal(labels, expected_labels)
        # Eval at 28 with crop fraction 1 keeps the pixels; each channel is the gray value.
        pixels = unnormalise(images)
        for channel in range(3):
            np.testing.assert_array_equal(pixels[..., channel], expected_images)


def test_training_stream_and_shards(tmp_path):
    written = write_idx_set(tmp_path, train=12, classes=3)
    info = build_dataset("idx", tmp_path, "train", training=True, batch_size=4, image_size=28,
                         seed=1, min_crop_area=0.35, color_jitter=0.0)
    batches = list(info.dataset.take(6))  # 24 images: two passes over the 12
    assert all(x.shape == (4, 28, 28, 3) for x, _ in batches)
    labels = np.concatenate([y.numpy() for _, y in batches])
    assert sorted(labels.tolist()) == [0] * 8 + [1] * 8 + [2] * 8
    # Without jitter a gray image stays gray through crop, resize and flip.
    pixels = unnormalise(batches[0][0].numpy())
    assert np.abs(pixels[..., 0] - pixels[..., 2]).max() <= 1

    shards = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2,
                                             input_pipeline_id=pipeline_id)
        shard = evaluation(tmp_path, "train", input_context=context)
        shards.append(unnormalise(collect(shard)[0])[..., 0])
    assert len(shards[0]) == len(shards[1]) == 6
    together = np.concatenate(shards)
    order = [int(np.flatnonzero((written["train"][0] == image).all(axis=(1, 2)))[0])
             for image in together]
    assert sorted(order) == list(range(12))


def test_val_labels_use_the_train_classes_and_stay_inside_them(tmp_path):
    write_idx_set(tmp_path, classes=4)
    assert SOURCES["idx"](tmp_path, "val").num_classes == 4  # the t10k labels reach 3 only
    write_idx(tmp_path / f"t10k-{LABELS}", np.array([0, 1, 2, 3, 4], np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: label 4 is outside the 4 "):
        SOURCES["idx"](tmp_path, "val")


def damage(path, data):
    path.write_bytes(data)
    return path.name


BROKEN_FILES = {
    "truncated images": (f"train-{IMAGES}", lambda good: good[:-100],
                         r"truncated: the header announces \(12, 28, 28\) values \(9424 bytes"),
    "truncated header": (f"train-{IMAGES}", lambda good: good[:10], r"truncated header"),
    "trailing bytes": (f"train-{LABELS}", lambda good: good + b"\0\0",
                       r"2 bytes after the \(12,\) values"),
    "bad magic": (f"train-{IMAGES}", lambda good: b"\x01\x02" + good[2:],
                  r"not an IDX file \(magic number 01020803"),
    "int32 values": (f"train-{LABELS}", lambda good: good[:2] + b"\x0c" + good[3:],
                     r"holds int32 values; only ubyte"),
    "labels with 3 dimensions": (f"train-{LABELS}", lambda good: idx_bytes(
        np.zeros((12, 1, 1), np.uint8)), r"has 3 dimensions, expected 1"),
    "mismatched counts": (f"train-{LABELS}", lambda good: idx_bytes(np.zeros(11, np.uint8)),
                          r"holds 12 images but .*train-labels-idx1-ubyte 11 labels"),
}


@pytest.mark.parametrize("problem", sorted(BROKEN_FILES))
def test_a_broken_file_is_a_clear_error_naming_it(tmp_path, problem):
    write_idx_set(tmp_path)
    name, corrupt, message = BROKEN_FILES[problem]
    damage(tmp_path / name, corrupt((tmp_path / name).read_bytes()))
    with pytest.raises(ValueError, match=message) as raised:
        evaluation(tmp_path, "train")
    assert str(tmp_path / name) in str(raised.value)


def test_broken_gzip_files_are_clear_errors(tmp_path):
    write_idx_set(tmp_path, compressed=True)
    images = tmp_path / f"train-{IMAGES}.gz"
    good = images.read_bytes()
    images.write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: truncated or corrupt "
                                         r"gzip data"):
        evaluation(tmp_path, "train")
    images.write_bytes(good[:12])  # not even a whole header after decompression
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: unreadable gzip data"):
        evaluation(tmp_path, "train")
    images.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x01"))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: truncated header"):
        evaluation(tmp_path, "train")


def test_missing_files_and_directory(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / f"t10k-{IMAGES}").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte: no such file \(nor "
                                                r"t10k-images-idx3-ubyte.gz\)"):
        evaluation(tmp_path, "val")
    assert evaluation(tmp_path, "train").num_examples == 12  # the train files suffice
    with pytest.raises(FileNotFoundError, match="nowhere"):
        evaluation(tmp_path / "nowhere", "train")
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        evaluation(tmp_path, "dev")


def test_header_is_read_without_the_values(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros((3, 5, 7), np.uint8), compressed=True)
    header = read_header(path, ndim=3)
    assert (header.dims, header.header_bytes, header.compressed) == ((3, 5, 7), 16, True)


def test_tfds_fashion_mnist_under_mock_data(tmp_path):
    # mock_data writes random 28x28x1 PNGs for fashion_mnist's train and test splits.
    with tfds.testing.mock_data(num_examples=5):
        options = dict(batch_size=4, image_size=28, seed=0, tfds_name="fashion_mnist")
        train = build_dataset("tfds", tmp_path, "train", training=True, **options)
        x, y = next(iter(train.dataset))
        test = build_dataset("tfds", tmp_path, "val", training=False,
                             eval_crop_fraction=1.0, **options)
        batches = [(x.numpy(), y.numpy()) for x, y in test.dataset]
    assert x.shape == (4, 28, 28, 3) and y.dtype == tf.int32
    assert (train.num_examples, train.num_classes) == (5, 10)
    assert [b[0].shape[0] for b in batches] == [4, 1]
    pixels = unnormalise(batches[0][0])
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 1])
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])
    assert np.all((0 <= batches[0][1]) & (batches[0][1] < 10))


def test_tfds_dataset_not_prepared_or_unknown(tmp_path):
    options = dict(training=False, batch_size=4, image_size=28, seed=0)
    with pytest.raises(FileNotFoundError, match="tfds fashion_mnist is not prepared under .*"
                                                "tfds build fashion_mnist"):
        build_dataset("tfds", tmp_path, "train", tfds_name="fashion_mnist", **options)
    with pytest.raises(ValueError, match="^Dataset fashon_mnist not found"):
        build_dataset("tfds", tmp_path, "train", tfds_name="fashon_mnist", **options)
