"""Where the images come from: ImageFolder trees, TFRecord shards, tfds, IDX files or the Visual
Decathlon's annotation files.

Each `*_source` function returns a `Source`: a `tf.data.Dataset` of
``(item, label, key)`` records for this input pipeline's shard plus the size
of the whole split and the number of classes.

* ``item`` is what `Source.load` turns into encoded image bytes: a file path
  for ImageFolder (so shuffling moves short strings, and reading happens in
  the parallel decode step), the bytes themselves for TFRecord and tfds, the
  raw pixels of one image for IDX (`load` encodes them as PNG).
* ``label`` is an int32 class index in [0, num_classes).
* ``key`` is a human-readable name of the record (path, shard[index] or file
  name) used when a corrupt image is reported.

Sharding (`input_context`) happens here, before any shuffling, so shards are
disjoint for any seed.  With ``shuffle=True`` the file order is shuffled with
`seed`, anew (but reproducibly) on each pass; element shuffling is the
pipeline's job.
"""

import dataclasses
import os
import struct
from typing import Callable

import numpy as np
import tensorflow as tf

from bl_keras.data import idx

# Extensions `tf.io.decode_image` can read (torchvision also lists
# .ppm/.pgm/.tif, which TensorFlow cannot decode, so they are not collected).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")

# Split names per source; "train" and "val"/"validation" work everywhere.
_IMAGEFOLDER_SPLITS = {"train": "train", "val": "val", "validation": "val"}
_TFRECORD_SPLITS = {"train": "train", "val": "validation",
                    "validation": "validation"}
_TFDS_SPLITS = {"train": "train", "val": "eval", "validation": "eval",
                "test": "eval"}  # "eval": the dataset's validation or test split
_IDX_SPLITS = {"train": "train", "val": "t10k", "validation": "t10k",
               "test": "t10k"}


@dataclasses.dataclass(frozen=True)
class Source:
    records: tf.data.Dataset  # (item, label int32, key string) of this shard
    load: Callable[[tf.Tensor], tf.Tensor]  # item -> encoded image bytes
    num_examples: int  # in the whole split, all shards together
    num_classes: int


def imagefolder_source(data_dir, split, *, input_context=None, shuffle=False,
                       seed=None):
    """Reads ``data_dir/<split>/<class_name>/**/<image file>``.

    Class indices follow the sorted class-directory names, as torchvision's
    ImageFolder assigns them.  The class list is taken from ``train/`` when it
    exists, so a validation tree that lacks a class keeps the same indices.
    """
    split_dir = os.path.join(data_dir, _split_name(split, _IMAGEFOLDER_SPLITS))
    _require_dir(split_dir)
    train_dir = os.path.join(data_dir, "train")
    classes = _class_dirs(train_dir if os.path.isdir(train_dir) else split_dir)
    unknown = set(_class_dirs(split_dir)) - set(classes)
    if unknown:
        raise ValueError(f"{split_dir} has classes not in {train_dir}: "
                         f"{sorted(unknown)[:5]}")

    paths, labels = [], []
    for label, name in enumerate(classes):
        class_dir = os.path.join(split_dir, name)
        for path in _image_files(class_dir) if os.path.isdir(class_dir) else []:
            paths.append(path)
            labels.append(label)
    if not paths:
        raise FileNotFoundError(f"No image files found under {split_dir}")
    return _file_source(paths, labels, len(classes), input_context, shuffle, seed)


def _file_source(paths, labels, num_classes, input_context, shuffle, seed):
    """The `Source` of image files `paths` with `labels`: this pipeline's shard, its path
    order shuffled anew each pass if `shuffle`."""
    num_examples = len(paths)
    if input_context is not None:
        paths = paths[input_context.input_pipeline_id::
                      input_context.num_input_pipelines]
        labels = labels[input_context.input_pipeline_id::
                        input_context.num_input_pipelines]
    paths = tf.constant(paths, tf.string)
    records = tf.data.Dataset.from_tensor_slices(
        (paths, tf.constant(labels, tf.int32), paths))
    if shuffle:  # Paths are small: a full per-epoch permutation is cheap.
        records = records.shuffle(max(len(labels), 1), seed=seed,
                                  reshuffle_each_iteration=True)
    return Source(records, tf.io.read_file, num_examples, num_classes)


def tfrecord_source(data_dir, split, *, input_context=None, shuffle=False,
                    seed=None, label_offset=1, num_classes=1000):
    """Reads TF ImageNet-format shards ``data_dir/<train|validation>-*``.

    Records hold ``image/encoded`` (bytes) and ``image/class/label`` (int64).
    The standard TF ImageNet export stores labels 1..1000 (0 = background),
    hence ``label_offset=1``; labels outside [0, num_classes) after the offset
    raise, since they would otherwise silently poison the loss.
    """
    _require_dir(data_dir)
    pattern = os.path.join(data_dir, _split_name(split, _TFRECORD_SPLITS) + "-*")
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"No TFRecord files match {pattern}")
    num_examples = sum(_count_records(f) for f in files)

    n = input_context.num_input_pipelines if input_context else 1
    i = input_context.input_pipeline_id if input_context else 0
    # Whole files per pipeline when there are enough; otherwise every
    # pipeline reads all files in a fixed order and keeps every n-th record.
    shard_files = len(files) >= n
    if shard_files:
        files = files[i::n]
    file_ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle and shard_files:  # (Record sharding needs a fixed order.)
        file_ds = file_ds.shuffle(len(files), seed=seed,
                                  reshuffle_each_iteration=True)

    def read_file(path):
        return tf.data.TFRecordDataset(path, buffer_size=8 << 20).enumerate().map(
            lambda index, record: (record, path, index))

    records = file_ds.interleave(
        read_file, cycle_length=min(len(files), 16), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE)
    if not shard_files:
        records = records.shard(n, i)

    features = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
        "image/filename": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }

    def parse(record, path, index):
        example = tf.io.parse_single_example(record, features)
        label = tf.cast(example["image/class/label"] - label_offset, tf.int32)
        with tf.control_dependencies([
                tf.debugging.assert_non_negative(label, message="label < offset"),
                tf.debugging.assert_less(label, num_classes,
                                         message="label >= num_classes")]):
            label = tf.identity(label)
        key = tf.strings.join([path, "[", tf.strings.as_string(index), "] ",
                               example["image/filename"]])
        return example["image/encoded"], label, key

    records = records.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return Source(records, tf.identity, num_examples, num_classes)


def tfds_source(data_dir, split, *, input_context=None, shuffle=False,
                seed=None, manual_dir=None, name="imagenet2012"):
    """Reads the tfds image classification dataset `name` prepared under `data_dir`.

    Any dataset with "image" and "label" features works (``imagenet2012``,
    ``fashion_mnist``, ...).  "val" (or "validation", "test") reads the
    dataset's validation split, or its test split when it has none
    (fashion_mnist: train/test).  With `manual_dir` (for imagenet2012 the
    directory holding ILSVRC2012_img_*.tar) the dataset is prepared first if
    needed.  Images are read still encoded (SkipDecoding) so every source
    shares one decode/augment path; grayscale images become RGB there.
    Shards are even element ranges of the split (`tfds.even_splits`).
    """
    import tensorflow_datasets as tfds  # Heavy import; only this source needs it.

    if data_dir is not None:
        _require_dir(data_dir)
    builder = tfds.builder(name, data_dir=data_dir)
    split = _split_name(split, _TFDS_SPLITS)
    if split == "eval":
        split = _tfds_eval_split(builder, name)
    if manual_dir is not None:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    read_split = split
    if input_context is not None:
        read_split = tfds.even_splits(
            split, input_context.num_input_pipelines)[input_context.input_pipeline_id]
    # Reported with a corrupt image: its file name where the dataset keeps one.
    key_feature = ("file_name" if "file_name" in builder.info.features
                   else "tfds_id")

    def read(split_arg, shuffle_files):
        return read_tfds(builder, name, data_dir, split_arg, shuffle_files=shuffle_files,
                         read_config=tfds.ReadConfig(shuffle_seed=seed, add_tfds_id=True),
                         decoders={"image": tfds.decode.SkipDecoding()})

    records = read(read_split, shuffle).map(
        lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32), ex[key_feature]))
    num_examples = tfds_split_size(builder, split, lambda: read(split, False))
    num_classes = builder.info.features["label"].num_classes
    return Source(records, tf.identity, num_examples, num_classes)


def read_tfds(builder, name, data_dir, split, **options):
    """`builder.as_dataset(split=split, **options)`; a set not prepared under `data_dir` is a
    `FileNotFoundError` saying how to prepare it (tfds raises an AssertionError)."""
    try:
        return builder.as_dataset(split=split, **options)
    except AssertionError as error:  # tfds' "could not find data" error.
        how = ("pass manual_dir to prepare it" if name == "imagenet2012"
               else f"prepare it with `tfds build {name} --data_dir=...`")
        raise FileNotFoundError(
            f"tfds {name} is not prepared under {data_dir}; {how}") from error


def tfds_split_size(builder, split, read):
    """Examples in `split`: the recorded sizes (of each part of a sum such as
    "train+validation"), else counted over `read()` (slices, or no recorded sizes, e.g. under
    tfds.testing.mock_data: counting reads every record)."""
    parts = split.split("+")
    if all(part in builder.info.splits for part in parts):
        return sum(builder.info.splits[part].num_examples for part in parts)
    return int(read().reduce(0, lambda n, _: n + 1))


def idx_source(data_dir, split, *, input_context=None, shuffle=False,
               seed=None):
    """Reads an MNIST-format set: the four IDX files in `data_dir`.

    ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` are the "train"
    split, ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte`` the "val"
    (or "validation", "test") split, each plain or gzipped (``.gz``; the
    content, not the name, tells).  Fashion-MNIST, MNIST and KMNIST ship so.

    The number of classes is the largest train label + 1 (10 for those sets;
    EMNIST letters, labelled 1..26, gets 27 with class 0 unused); a test label
    outside it is an error.  Headers, lengths and counts are checked here and
    the labels read (small); the images are read lazily from the file.

    Grayscale: `load` encodes each rows x columns image as a 1-channel PNG,
    and the shared `decode_image` replicates it to 3 identical channels, as
    it does for any grayscale JPEG/PNG.  So every model of the zoo (all take
    RGB) and the ImageNet normalisation work unchanged, an IDX image gives
    the same tensor as the same picture saved as PNG in an ImageFolder tree,
    and the cost is a 3-channel stem (bL-ResNet-50 at 28x28: 1.2M of its
    54.7M MACs).
    """
    _require_dir(data_dir)
    prefix = _split_name(split, _IDX_SPLITS)
    images = idx.read_header(_idx_file(data_dir, prefix, "images-idx3"), ndim=3)
    labels_path = _idx_file(data_dir, prefix, "labels-idx1")
    labels = idx.read_labels(labels_path)
    if labels.size != images.count:
        raise ValueError(f"{images.path} holds {images.count} images but "
                         f"{labels_path} {labels.size} labels")
    if images.count == 0:
        raise ValueError(f"{images.path}: holds no images")
    train_labels = (labels if prefix == "train" else
                    idx.read_labels(_idx_file(data_dir, "train", "labels-idx1")))
    num_classes = int(train_labels.max()) + 1
    if labels.max() >= num_classes:
        raise ValueError(f"{labels_path}: label {labels.max()} is outside the "
                         f"{num_classes} classes of the train labels")

    records = tf.data.Dataset.zip(
        idx.image_records(images),
        tf.data.Dataset.from_tensor_slices(labels.astype(np.int32))).enumerate()
    if input_context is not None:
        records = records.shard(input_context.num_input_pipelines,
                                input_context.input_pipeline_id)
    if shuffle:  # A whole set is tens of MB: a full per-epoch permutation.
        records = records.shuffle(images.count, seed=seed,
                                  reshuffle_each_iteration=True)
    rows, columns = images.dims[1:]

    def record(index, example):
        pixels, label = example
        key = tf.strings.join([images.path, "[", tf.strings.as_string(index), "]"])
        return pixels, label, key

    def load(pixels):
        image = tf.reshape(tf.io.decode_raw(pixels, tf.uint8), [rows, columns, 1])
        return tf.io.encode_png(image)

    return Source(records.map(record), load, images.count, num_classes)


DECATHLON_SPLITS = {"train": "train", "val": "val", "validation": "val"}


def decathlon_source(data_dir, split, *, input_context=None, shuffle=False, seed=None,
                     domain=None):
    """Reads one domain of the Visual Decathlon as its devkit lays it out:
    ``data_dir/annotations/<domain>_<split>.json`` (COCO-style: "images" with "id" and
    "file_name" relative to `data_dir`, "annotations" with "image_id" and "category_id",
    "categories") and the image files it names (``data_dir/data/<domain>/...``). Class
    indices follow the sorted category ids. The test split has no labels (the challenge
    scores it on its server), so it cannot be read here.
    """
    import json

    if not domain:
        raise ValueError("the decathlon source needs a domain (e.g. aircraft, cifar100)")
    name = _split_name(split, DECATHLON_SPLITS)
    path = os.path.join(data_dir, "annotations", f"{domain}_{name}.json")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no such annotation file")
    with tf.io.gfile.GFile(path) as f:
        try:
            imdb = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not a JSON annotation file ({err})") from None
    try:
        category_ids = sorted(c["id"] for c in imdb["categories"])
        label_of = {a["image_id"]: category_ids.index(a["category_id"])
                    for a in imdb["annotations"]}
        images = sorted(imdb["images"], key=lambda image: image["id"])
        paths = [os.path.join(data_dir, image["file_name"]) for image in images]
        labels = [label_of[image["id"]] for image in images]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a Visual Decathlon annotation file (missing or "
                         f"unknown {err})") from None
    if not paths:
        raise FileNotFoundError(f"{path} lists no images")
    return _file_source(paths, labels, len(category_ids), input_context, shuffle, seed)


def _split_name(split, names):
    if split not in names:
        raise ValueError(f"Unknown split {split!r}; use one of {sorted(names)}")
    return names[split]


def _tfds_eval_split(builder, name):
    """The split "val" reads: the recorded validation split, else the test split (splits
    are recorded once the dataset is prepared; imagenet2012's is known)."""
    recorded = set(builder.info.splits)
    if recorded:
        return "validation" if "validation" in recorded else "test"
    return "validation" if name == "imagenet2012" else "test"


def _idx_file(data_dir, prefix, kind):
    """``<prefix>-<kind>-ubyte``, or its ``.gz`` when only that exists."""
    path = os.path.join(data_dir, f"{prefix}-{kind}-ubyte")
    for candidate in (path, path + ".gz"):
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"{path}: no such file (nor {os.path.basename(path)}.gz)")


def _require_dir(path):
    if not tf.io.gfile.isdir(path):
        raise FileNotFoundError(f"Data directory {path} does not exist")


def _class_dirs(directory):
    return sorted(e.name for e in os.scandir(directory) if e.is_dir())


def _image_files(class_dir):
    """Image files below `class_dir`, sorted, following symlinks."""
    found = []
    for root, dirs, files in os.walk(class_dir, followlinks=True):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in sorted(files)
                     if f.lower().endswith(IMAGE_EXTENSIONS))
    return found


def _count_records(path):
    """Counts TFRecords by hopping over the length headers (no data read).

    Record layout: uint64 length, uint32 crc, data, uint32 crc.
    """
    count = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return count
            (length,) = struct.unpack("<Q", header[:8])
            f.seek(length + 4, whence=1)
            count += 1
