"""build_dataset over the three sources, corrupt files, sharding, determinism.

Most trees use flat-colour images whose colour identifies the image: a flat
image stays flat through the evaluation resize/crop, so un-normalising a
pixel of the output tells which file (and so which label) it came from.
"""

import io

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from bl_keras.data import IMAGENET_MEAN, IMAGENET_STD, build_dataset

SIZE = 16
# Class directories written out of order: indices must follow sorted names.
CLASSES = ("b_dogs", "a_cats", "c_owls")


def colour(label, index):
    return (40 * label + 20, 20 * index + 10, 200)


def encode(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def flat(label, index):
    return np.broadcast_to(np.array(colour(label, index), np.uint8),
                           (20, 24, 3)).copy()


def identify(images):
    """Recovers the (label, index) colour code of each flat output image."""
    rgb = images[:, SIZE // 2, SIZE // 2] * IMAGENET_STD + IMAGENET_MEAN
    rgb = np.round(rgb * 255).astype(int)
    return [((r - 20) // 40 if abs((r - 20) % 40) < 3 else None,
             round((g - 10) / 20)) for r, g, _ in rgb]


def collect(dataset):
    images, labels = [], []
    for x, y in dataset:
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture
def folder(tmp_path):
    """3 classes x 3 flat PNG/JPEG images, plus a PNG named .JPEG and a
    corrupt .JPEG: 11 files, 10 decodable."""
    for name in CLASSES:
        label = sorted(CLASSES).index(name)
        class_dir = tmp_path / "train" / name
        class_dir.mkdir(parents=True)
        for index in range(3):
            fmt, ext = ("PNG", ".png") if index < 2 else ("JPEG", ".jpg")
            (class_dir / f"img{index}{ext}").write_bytes(
                encode(flat(label, index), fmt))
    (tmp_path / "train" / "b_dogs" / "disguised.JPEG").write_bytes(
        encode(flat(1, 3), "PNG"))
    (tmp_path / "train" / "a_cats" / "corrupt.JPEG").write_bytes(
        np.random.default_rng(0).bytes(500))
    (tmp_path / "train" / "a_cats" / "notes.txt").write_text("not an image")
    return tmp_path


def test_imagefolder_eval_labels_batches_and_corrupt_file(folder, capfd):
    info = build_dataset("imagefolder", folder, "train", training=False,
                         batch_size=4, image_size=SIZE, seed=0)
    assert info.num_examples == 11 and info.num_classes == 3
    batches = list(info.dataset)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]  # remainder kept
    assert batches[0][0].shape[1:] == (SIZE, SIZE, 3)
    assert batches[0][0].dtype == tf.float32 and batches[0][1].dtype == tf.int32

    images, labels = collect(batches)
    assert len(labels) == 11 - 1
    codes = identify(images)
    # Label = index of the sorted class name, as encoded in the colour.
    assert [code[0] for code in codes] == labels.tolist()
    assert sorted(codes) == sorted(
        [(label, i) for label in range(3) for i in range(3)] + [(1, 3)])
    assert info.num_skipped == 1
    assert "corrupt.JPEG" in capfd.readouterr().err


def test_imagefolder_training_batches_and_skip_counting(folder, capfd):
    info = build_dataset("imagefolder", folder, "train", training=True,
                         batch_size=4, image_size=SIZE, seed=3)
    batches = list(info.dataset.take(5))
    assert all(x.shape == (4, SIZE, SIZE, 3) for x, _ in batches)
    # Shuffling happens within a pass, so 20 images are exactly two passes
    # over the 10 decodable ones.
    labels = np.concatenate([y.numpy() for _, y in batches])
    assert sorted(labels.tolist()) == [0] * 6 + [1] * 8 + [2] * 6
    # The corrupt file is skipped on every pass, but reported and counted once.
    assert info.num_skipped == 1
    assert capfd.readouterr().err.count("corrupt.JPEG") == 1


def test_cache_decodes_once(folder, capfd):
    info = build_dataset("imagefolder", folder, "train", training=True,
                         batch_size=5, image_size=SIZE, seed=0, cache=True)
    labels = np.concatenate([y.numpy() for _, y in info.dataset.take(6)])
    assert sorted(labels.tolist()) == [0] * 9 + [1] * 12 + [2] * 9
    assert info.num_skipped == 1  # 3 passes, but decoded (and skipped) once
    assert capfd.readouterr().err.count("corrupt.JPEG") == 1


def test_unknown_source_and_missing_data(tmp_path):
    with pytest.raises(ValueError, match="imagefolder.*tfds.*tfrecord"):
        build_dataset("folders", tmp_path, "train", training=False,
                      batch_size=2, image_size=SIZE, seed=0)
    missing = tmp_path / "nowhere"
    for source in ("imagefolder", "tfrecord", "tfds"):
        with pytest.raises(FileNotFoundError, match="nowhere"):
            build_dataset(source, missing, "train", training=False,
                          batch_size=2, image_size=SIZE, seed=0)
    (tmp_path / "val" / "empty_class").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="val"):
        build_dataset("imagefolder", tmp_path, "val", training=False,
                      batch_size=2, image_size=SIZE, seed=0)
    with pytest.raises(FileNotFoundError, match="validation-"):
        build_dataset("tfrecord", tmp_path, "val", training=False,
                      batch_size=2, image_size=SIZE, seed=0)


def write_tfrecords(directory, split, num_shards, per_shard, label_base=1):
    """TF ImageNet-format shards; file label = label_base + class index."""
    examples = []
    for shard in range(num_shards):
        path = directory / f"{split}-{shard:05d}-of-{num_shards:05d}"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for k in range(per_shard):
                index = shard * per_shard + k
                label = index % 3
                feature = {
                    "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
                        value=[encode(flat(label, index), "PNG")])),
                    "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(
                        value=[label + label_base])),
                    "image/filename": tf.train.Feature(bytes_list=tf.train.BytesList(
                        value=[f"img{index}.JPEG".encode()])),
                }
                writer.write(tf.train.Example(
                    features=tf.train.Features(feature=feature)).SerializeToString())
                examples.append((label, index))
    return examples


def test_tfrecord_labels_are_zero_based_with_default_offset(tmp_path):
    expected = write_tfrecords(tmp_path, "validation", num_shards=2, per_shard=3)
    write_tfrecords(tmp_path, "train", num_shards=1, per_shard=2)
    info = build_dataset("tfrecord", tmp_path, "val", training=False,
                         batch_size=4, image_size=SIZE, seed=0, num_classes=3)
    assert info.num_examples == 6 and info.num_classes == 3
    images, labels = collect(info.dataset)
    codes = identify(images)
    assert [code[0] for code in codes] == labels.tolist()
    assert sorted(codes) == sorted(expected)


def test_tfrecord_rejects_labels_outside_the_classes(tmp_path):
    write_tfrecords(tmp_path, "train", num_shards=1, per_shard=3, label_base=0)
    info = build_dataset("tfrecord", tmp_path, "train", training=False,
                         batch_size=4, image_size=SIZE, seed=0, num_classes=3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="offset"):
        list(info.dataset)  # label 0 - offset 1 = -1


def test_tfds_imagenet2012_under_mock_data(tmp_path):
    # mock_data fakes the split with random *encoded* JPEGs, which is what
    # SkipDecoding yields from real data too; it records no split sizes, so
    # the source counts the examples.
    with tfds.testing.mock_data(num_examples=6):
        train = build_dataset("tfds", tmp_path, "train", training=True,
                              batch_size=4, image_size=SIZE, seed=0)
        x, y = next(iter(train.dataset))
        val = build_dataset("tfds", tmp_path, "val", training=False,
                            batch_size=4, image_size=SIZE, seed=0)
        sizes = [x.shape[0] for x, _ in val.dataset]
    assert x.shape == (4, SIZE, SIZE, 3) and x.dtype == tf.float32
    assert y.dtype == tf.int32 and np.all((0 <= y) & (y < 1000))
    assert (train.num_examples, train.num_classes) == (6, 1000)
    assert sizes == [4, 2]


@pytest.mark.parametrize("source,num_files", [
    ("imagefolder", None), ("tfrecord", 3), ("tfrecord", 1)])
def test_input_context_shards_are_disjoint_and_cover(folder, tmp_path, source,
                                                     num_files):
    if source == "tfrecord":  # 1 file: record-level sharding; 3: file-level.
        data_dir = tmp_path / "records"
        data_dir.mkdir()
        expected = write_tfrecords(data_dir, "train", num_files, 9 // num_files)
        kwargs = dict(num_classes=3)
    else:
        data_dir = folder
        expected = [(label, i) for label in range(3) for i in range(3)] + [(1, 3)]
        kwargs = {}
    shards = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2,
                                             input_pipeline_id=pipeline_id)
        info = build_dataset(source, data_dir, "train", training=False,
                             batch_size=3, image_size=SIZE, seed=0,
                             input_context=context, **kwargs)
        shards.append(identify(collect(info.dataset)[0]))
    assert shards[0] and shards[1]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == sorted(expected)


def noise_tree(root):
    rng = np.random.default_rng(0)
    for label in range(2):
        class_dir = root / "train" / f"class{label}"
        class_dir.mkdir(parents=True)
        for index in range(8):
            image = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
            (class_dir / f"{index}.png").write_bytes(encode(image, "PNG"))
    return root


def training_batches(root, seed, count, **kwargs):
    info = build_dataset("imagefolder", root, "train", training=True,
                         batch_size=4, image_size=SIZE, seed=seed,
                         rotation_degrees=10.0, shuffle_buffer=8, **kwargs)
    return [(x.numpy(), y.numpy()) for x, y in info.dataset.take(count)]


def test_same_seed_gives_identical_batches(tmp_path):
    root = noise_tree(tmp_path)
    first = training_batches(root, 5, 5)
    again = training_batches(root, 5, 5)
    other = training_batches(root, 6, 5)
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][0], other[0][0])


def test_skip_examples_resumes_the_same_stream(tmp_path):
    root = noise_tree(tmp_path)
    full = training_batches(root, 5, 6)
    resumed = training_batches(root, 5, 3, skip_examples=3 * 4)
    for (x1, y1), (x2, y2) in zip(full[3:], resumed):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
