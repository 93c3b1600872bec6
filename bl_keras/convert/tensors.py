"""Turn a `TensorRef` and the raw bytes of its storage into a numpy array.

PyTorch tensors are views: (storage offset, size, stride) over a flat storage, so a transposed or
sliced tensor saved as such points into a larger storage. The view is rebuilt with `as_strided`
after checking that it stays inside the storage (as_strided itself would read past the buffer),
then copied, so the result is C-contiguous and owns its memory, as `tensor.numpy()` would be.
"""

import numpy as np

# numpy type codes per element type; bfloat16 is read as its 16 bits and widened below.
_CODES = {
    "float32": "f4", "float64": "f8", "float16": "f2", "bfloat16": "u2", "int64": "i8",
    "int32": "i4", "int16": "i2", "int8": "i1", "uint8": "u1", "uint16": "u2", "uint32": "u4",
    "uint64": "u8", "bool": "?", "complex64": "c8", "complex128": "c16",
}


class TensorDataError(ValueError):
    """The bytes of a storage do not hold the tensor the pickle describes."""


def element_size(dtype):
    return np.dtype(_CODES[dtype]).itemsize


def _numpy_dtype(dtype, byteorder):
    if dtype not in _CODES:
        raise TensorDataError(f"unsupported tensor dtype {dtype}")
    return np.dtype(_CODES[dtype]).newbyteorder("<" if byteorder == "little" else ">")


def to_numpy(ref, buffer, byteorder="little"):
    """The array of `ref` (a TensorRef) given `buffer`, the bytes of its whole stored storage.

    Floats keep their width (float16 stays float16) except bfloat16, which numpy lacks and which
    becomes float32 exactly; the result is in native byte order.
    """
    storage = ref.storage
    dtype = _numpy_dtype(ref.dtype, byteorder)
    start = storage.offset * element_size(storage.dtype)
    nbytes = storage.numel * element_size(storage.dtype)
    if len(buffer) < start + nbytes:
        raise TensorDataError(f"storage {storage.key!r} has {len(buffer)} bytes, the pickle "
                              f"declares {start + nbytes}")
    elements = np.frombuffer(buffer, dtype=dtype, count=nbytes // dtype.itemsize, offset=start)
    if 0 in ref.shape:
        array = np.zeros(ref.shape, dtype)
    else:
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.strides))
        if last >= elements.size:
            raise TensorDataError(
                f"tensor of shape {ref.shape}, strides {ref.strides}, offset {ref.offset} "
                f"reaches element {last} of storage {storage.key!r}, which has {elements.size}")
        view = np.lib.stride_tricks.as_strided(
            elements[ref.offset:], shape=ref.shape,
            strides=[s * dtype.itemsize for s in ref.strides], writeable=False)
        array = view.copy()
    array = array.astype(dtype.newbyteorder("="), copy=False)
    if ref.dtype == "bfloat16":
        # bfloat16 is the upper half of a float32.
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array
