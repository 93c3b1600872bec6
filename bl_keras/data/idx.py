"""IDX files, the format of MNIST and its relatives (Fashion-MNIST, KMNIST, EMNIST).

A file is a 4-byte magic number (two zero bytes, a value-type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in row-major order; the
sets are distributed plain or gzipped.  Only unsigned bytes (type code 0x08) are accepted:
every image and label file of the family uses them.

`read_header` checks a file completely without reading its values (the length check of a
gzipped file uses the uncompressed size its gzip trailer records), so a truncated or foreign
file is refused before training starts rather than in the middle of an epoch.
"""

import dataclasses
import gzip
import math
import os
import struct

import numpy as np
import tensorflow as tf

UBYTE = 0x08
TYPE_NAMES = {0x08: "ubyte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
              0x0D: "float32", 0x0E: "float64"}
GZIP_MAGIC = b"\x1f\x8b"


@dataclasses.dataclass(frozen=True)
class IdxHeader:
    path: str
    dims: tuple  # (count, ...) e.g. (60000, 28, 28) for images, (60000,) for labels
    header_bytes: int  # where the values start (in the uncompressed stream)
    compressed: bool

    @property
    def count(self):
        return self.dims[0]


def read_header(path, ndim):
    """Parses the header of the ubyte IDX file `path` with `ndim` dimensions and checks that
    the file holds exactly the values the header announces.  Raises `FileNotFoundError` or a
    `ValueError` naming the file and the problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    compressed = _is_gzip(path)
    try:
        with _open(path, compressed) as f:
            head = f.read(4 + 4 * ndim)
    except (OSError, EOFError) as err:  # gzip's BadGzipFile is an OSError
        raise ValueError(f"{path}: unreadable gzip data ({err})") from None
    if len(head) < 4:
        raise ValueError(f"{path}: truncated: {len(head)} bytes, shorter than an IDX header")
    zeros, type_code, file_ndim = struct.unpack(">HBB", head[:4])
    if zeros != 0:
        raise ValueError(f"{path}: not an IDX file (magic number {head[:4].hex()}; an IDX "
                         f"file starts with 0000, a type code and the number of dimensions)")
    if type_code != UBYTE:
        name = TYPE_NAMES.get(type_code, f"unknown type code 0x{type_code:02x}")
        raise ValueError(f"{path}: holds {name} values; only ubyte (0x08) IDX files are read")
    if file_ndim != ndim:
        raise ValueError(f"{path}: has {file_ndim} dimensions, expected {ndim} "
                         f"({'count x rows x columns' if ndim == 3 else 'count'})")
    if len(head) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated header ({len(head)} bytes)")
    dims = struct.unpack(f">{ndim}I", head[4:])
    header = IdxHeader(path, dims, 4 + 4 * ndim, compressed)
    _check_length(header)
    return header


def read_labels(path):
    """The values of the 1-dimensional ubyte IDX file `path`, as a uint8 array (checked as
    `read_header` does)."""
    header = read_header(path, ndim=1)
    with _open(header.path, header.compressed) as f:
        f.read(header.header_bytes)
        values = np.frombuffer(f.read(), np.uint8)
    if values.size != header.count:  # (only a gzip trailer that lies gets here)
        raise ValueError(f"{header.path}: holds {values.size} labels, its header announces "
                         f"{header.count}")
    return values


def image_records(header):
    """A dataset of the images of `header`'s file, each the raw bytes of one rows x columns
    image, read lazily in file order."""
    rows, columns = header.dims[1:]
    return tf.data.FixedLengthRecordDataset(
        header.path, record_bytes=rows * columns, header_bytes=header.header_bytes,
        compression_type="GZIP" if header.compressed else "")


def _check_length(header):
    expected = header.header_bytes + math.prod(header.dims)
    if header.compressed:
        with open(header.path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            # ISIZE: the uncompressed length modulo 2**32 (of an intact file).
            (recorded,) = struct.unpack("<I", f.read(4))
        if recorded != expected % 2**32:
            raise ValueError(f"{header.path}: truncated or corrupt gzip data: the header "
                             f"announces {header.dims} values ({expected} bytes with the "
                             f"header), the gzip trailer records {recorded}")
        return
    actual = os.path.getsize(header.path)
    if actual < expected:
        raise ValueError(f"{header.path}: truncated: the header announces {header.dims} "
                         f"values ({expected} bytes with the header), the file holds {actual}")
    if actual > expected:
        raise ValueError(f"{header.path}: {actual - expected} bytes after the "
                         f"{header.dims} values its header announces")


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _open(path, compressed):
    return gzip.open(path, "rb") if compressed else open(path, "rb")
