"""Read the state dict of a PyTorch checkpoint (`.pth`, `.pth.tar`) without torch.

Two on-disk formats exist:

- zip (PyTorch >= 1.6): `<prefix>/data.pkl` (the object, storages as persistent ids),
  `<prefix>/data/<key>` (the raw bytes of each storage), `<prefix>/byteorder` ('little'/'big';
  absent before PyTorch 2.1, when files were little-endian).
- legacy (PyTorch <= 1.5, the authors' 2019 checkpoints): consecutive pickles of the magic number,
  the protocol version and the system info, then the object, then the sorted list of storage
  keys, then each storage in that order as an int64 element count and its raw little-endian bytes.

Both pickles go through `RestrictedUnpickler`, so reading never runs code from the file. The
released files hold `{'epoch', 'arch', 'state_dict', 'best_top1', 'optimizer'}`; only
`state_dict` is returned (a bare state dict is accepted too) and only its storages are read.
Tensor names are returned as stored (`module.` prefixes included).
"""

import os
import pickle
import struct
import zipfile
import zlib

from bl_keras.convert import tensors as tensor_data
from bl_keras.convert.unpickler import RestrictedUnpickler, TensorRef

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class CheckpointReadError(ValueError):
    """A checkpoint file could not be read; the message names the file and the problem."""


class _Problem(Exception):
    """A problem found while reading; `read_state_dict` adds the file name."""


# What a damaged or hostile pickle can raise while being read (besides our own errors).
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                  KeyError, IndexError, UnicodeDecodeError, OverflowError, RecursionError,
                  struct.error)


def read_state_dict(path):
    """{tensor name: numpy array} of the PyTorch checkpoint at `path`.

    Raises CheckpointReadError for a missing, corrupt, truncated or tensor-less file and for a
    file whose pickle names a global outside the allowlist (nothing from it is run).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            head = file.read(4)
            file.seek(0)
            if head.startswith(b"PK"):
                return _read_zip(file)
            if head.startswith(b"\x80"):
                return _read_legacy(file)
            raise _Problem("not a PyTorch checkpoint (neither a zip archive nor a pickle; "
                           "the tar format of the earliest PyTorch releases is not read)")
    except FileNotFoundError:
        raise CheckpointReadError(f"cannot read checkpoint {path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointReadError(f"cannot read checkpoint {path}: is a directory") from None
    except OSError as err:
        raise CheckpointReadError(f"cannot read checkpoint {path}: {err.strerror or err}") \
            from None
    except _Problem as err:
        raise CheckpointReadError(f"cannot read checkpoint {path}: {err}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        # Damaged storage records surface here (CRC mismatch, compressed data cut short).
        raise CheckpointReadError(
            f"cannot read checkpoint {path}: corrupt or truncated zip archive ({err})") from None


def _unpickle(file, what):
    unpickler = RestrictedUnpickler(file)
    try:
        return unpickler.load(), unpickler.storages
    except EOFError:
        raise _Problem(f"truncated: the {what} pickle ends early") from None
    except pickle.UnpicklingError as err:
        if "truncated" in str(err):  # the C unpickler's word for EOF inside an opcode
            raise _Problem(f"truncated: the {what} pickle ends early") from None
        raise _Problem(f"{what} pickle: {err}") from None
    except _PICKLE_ERRORS as err:
        raise _Problem(f"corrupt {what} pickle ({type(err).__name__}: {err})") from None


def _select_state_dict(obj):
    """The {name: TensorRef} to read: `obj['state_dict']` if there is one, else `obj`."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise _Problem(f"holds a {type(state).__name__}, not a state dict")
    if not all(isinstance(k, str) for k in state):
        raise _Problem("state dict keys must be strings")
    tensors = {k: v for k, v in state.items() if isinstance(v, TensorRef)}
    if not tensors:
        keys = ", ".join(map(str, list(state)[:10])) or "none"
        raise _Problem(f"holds no tensors (keys: {keys})")
    return tensors


def _materialize(tensors, buffers, byteorder):
    try:
        return {name: tensor_data.to_numpy(ref, buffers[ref.storage.key], byteorder)
                for name, ref in tensors.items()}
    except tensor_data.TensorDataError as err:
        raise _Problem(str(err)) from None


# --- zip format ---------------------------------------------------------------------------------

def _read_zip(file):
    with zipfile.ZipFile(file) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise _Problem(f"zip archive with {len(pickles)} '<prefix>/data.pkl' records, "
                           "not a PyTorch checkpoint")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in archive.namelist():
            byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace")
            if byteorder not in ("little", "big"):
                raise _Problem(f"unknown byte order {byteorder!r}")
        with archive.open(pickles[0]) as data_pkl:
            obj, storages = _unpickle(data_pkl, "data.pkl")
        tensors = _select_state_dict(obj)
        buffers = {}
        for key in {ref.storage.key for ref in tensors.values()}:
            try:
                info = archive.getinfo(f"{prefix}data/{key}")
            except KeyError:
                raise _Problem(f"storage record data/{key} is missing") from None
            dtype, numel = storages[key]
            # Read what the pickle declares, no more: a hostile record could inflate to any size.
            with archive.open(info) as record:
                buffers[key] = record.read(numel * tensor_data.element_size(dtype))
        return _materialize(tensors, buffers, byteorder)


# --- legacy format ------------------------------------------------------------------------------

def _read_legacy(file):
    magic, _ = _unpickle(file, "magic number")
    if magic != LEGACY_MAGIC_NUMBER:
        raise _Problem("not a PyTorch checkpoint (a pickle without PyTorch's magic number)")
    version, _ = _unpickle(file, "protocol version")
    if version != LEGACY_PROTOCOL_VERSION:
        raise _Problem(f"unsupported legacy protocol version {version!r}")
    sys_info, _ = _unpickle(file, "system info")
    if not isinstance(sys_info, dict):
        raise _Problem("corrupt system info record")
    obj, storages = _unpickle(file, "object")
    keys, _ = _unpickle(file, "storage key list")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _Problem("corrupt storage key list")
    tensors = _select_state_dict(obj)
    wanted = {ref.storage.key for ref in tensors.values()}
    buffers = _read_legacy_storages(file, keys, storages, wanted)
    missing = wanted - set(buffers)
    if missing:
        raise _Problem(f"storages {sorted(missing)} are not in the file")
    # Whatever the saving machine, PyTorch writes legacy storages little-endian.
    return _materialize(tensors, buffers, "little")


def _read_legacy_storages(file, keys, storages, wanted):
    """The bytes of the `wanted` storages; the others (optimizer state) are skipped."""
    size = os.fstat(file.fileno()).st_size
    buffers = {}
    for key in keys:
        if key not in storages:
            raise _Problem(f"storage {key!r} is listed but not referenced by the pickle")
        dtype, numel = storages[key]
        head = file.read(8)
        if len(head) < 8:
            raise _Problem(f"truncated: storage {key!r} is missing")
        (count,) = struct.unpack("<q", head)
        if count != numel:
            raise _Problem(f"storage {key!r} holds {count} elements, the pickle declares {numel}")
        nbytes = numel * tensor_data.element_size(dtype)
        if file.tell() + nbytes > size:
            raise _Problem(f"truncated: storage {key!r} needs {nbytes} bytes, "
                           f"{size - file.tell()} remain")
        if key in wanted:
            buffers[key] = file.read(nbytes)
        else:
            file.seek(nbytes, os.SEEK_CUR)
    return buffers
