"""Where the images come from: ImageFolder trees, TFRecord shards or tfds.

Each `*_source` function returns a `Source`: a `tf.data.Dataset` of
``(item, label, key)`` records for this input pipeline's shard plus the size
of the whole split and the number of classes.

* ``item`` is what `Source.load` turns into encoded image bytes: a file path
  for ImageFolder (so shuffling moves short strings, and reading happens in
  the parallel decode step), the bytes themselves for TFRecord and tfds.
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

import tensorflow as tf

# Extensions `tf.io.decode_image` can read (torchvision also lists
# .ppm/.pgm/.tif, which TensorFlow cannot decode, so they are not collected).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")

# Split names per source; "train" and "val"/"validation" work everywhere.
_IMAGEFOLDER_SPLITS = {"train": "train", "val": "val", "validation": "val"}
_TFRECORD_SPLITS = {"train": "train", "val": "validation",
                    "validation": "validation"}
_TFDS_SPLITS = _TFRECORD_SPLITS


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
    return Source(records, tf.io.read_file, num_examples, len(classes))


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
                seed=None, manual_dir=None):
    """Reads the tfds ``imagenet2012`` dataset prepared under `data_dir`.

    With `manual_dir` (the directory holding ILSVRC2012_img_*.tar) the
    dataset is prepared first if needed.  Images are read still encoded
    (SkipDecoding) so every source shares one decode/augment path.  Shards
    are even element ranges of the split (`tfds.even_splits`).
    """
    import tensorflow_datasets as tfds  # Heavy import; only this source needs it.

    if data_dir is not None:
        _require_dir(data_dir)
    split = _split_name(split, _TFDS_SPLITS)
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    if manual_dir is not None:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    read_split = split
    if input_context is not None:
        read_split = tfds.even_splits(
            split, input_context.num_input_pipelines)[input_context.input_pipeline_id]

    def read(split_arg, shuffle_files):
        try:
            return builder.as_dataset(
                split=split_arg, shuffle_files=shuffle_files,
                read_config=tfds.ReadConfig(shuffle_seed=seed),
                decoders={"image": tfds.decode.SkipDecoding()})
        except AssertionError as error:  # tfds' "could not find data" error.
            raise FileNotFoundError(
                f"tfds imagenet2012 is not prepared under {data_dir}; pass "
                f"manual_dir to prepare it") from error

    records = read(read_split, shuffle).map(
        lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32), ex["file_name"]))
    if split in builder.info.splits:
        num_examples = builder.info.splits[split].num_examples
    else:  # No recorded split sizes (e.g. under tfds.testing.mock_data): count.
        num_examples = int(read(split, False).reduce(0, lambda n, _: n + 1))
    num_classes = builder.info.features["label"].num_classes
    return Source(records, tf.identity, num_examples, num_classes)


def _split_name(split, names):
    if split not in names:
        raise ValueError(f"Unknown split {split!r}; use one of {sorted(names)}")
    return names[split]


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
