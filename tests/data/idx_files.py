"""Small MNIST-format (IDX) sets written by the tests themselves."""

import gzip
import struct

import numpy as np

IMAGES = "images-idx3-ubyte"
LABELS = "labels-idx1-ubyte"


def idx_bytes(array, type_code=0x08):
    """The IDX encoding of a uint8 array: magic, big-endian dims, values."""
    header = struct.pack(">HBB", 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx(path, array, compressed=False, type_code=0x08):
    data = idx_bytes(array, type_code)
    if compressed:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_split(rng, count, classes, rows=28, columns=28):
    images = rng.integers(0, 256, (count, rows, columns), dtype=np.uint8)
    labels = (np.arange(count) % classes).astype(np.uint8)
    return images, labels


def write_idx_set(directory, train=12, test=5, classes=4, compressed=False, seed=0):
    """The four files of an IDX set in `directory`; returns {"train"/"t10k": (images,
    labels)}."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for prefix, count in (("train", train), ("t10k", test)):
        images, labels = make_split(rng, count, classes)
        write_idx(directory / f"{prefix}-{IMAGES}", images, compressed)
        write_idx(directory / f"{prefix}-{LABELS}", labels, compressed)
        written[prefix] = images, labels
    return written
