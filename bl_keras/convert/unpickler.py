"""A pickle reader that rebuilds PyTorch tensors and nothing else.

A PyTorch checkpoint is a pickle, and `pickle.load` calls whatever callable the file names, so a
downloaded checkpoint could run any code. This unpickler resolves globals from an explicit
allowlist only (the tensor-rebuilding functions, `OrderedDict`, the storage types, dtypes and
`torch.Size`), and none of them is PyTorch's own: each is replaced by a stand-in defined here, so
reading needs neither torch nor trust in the file. Anything else raises `ForbiddenGlobalError`
naming the global, before it is called.

Tensors come out as `TensorRef`s (storage, offset, shape, strides, dtype): the bytes of a storage
follow the pickle in the legacy format, so tensors can only be filled in afterwards
(`bl_keras.convert.tensors.to_numpy`).
"""

import _compat_pickle
import collections
import pickle


class ForbiddenGlobalError(pickle.UnpicklingError):
    """The pickle names a global outside the allowlist (the file may be malicious)."""


class Sealed:
    """Base of every object this module hands to the pickle machine.

    The BUILD opcode sets an object's state; refusing it means a file cannot rewire a stand-in
    (say, the storage a tensor points to, or a rebuild function's defaults).
    """

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"the pickle tries to set the state of {self!r}")


class StorageType(Sealed):
    """Stands for `torch.FloatStorage` and friends: only its element type matters."""

    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"torch.{self.name}"


class TorchDType(Sealed):
    """Stands for a `torch.float32`-style dtype (named by the v3 tensor rebuild)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"


class TensorClass(Sealed):
    """Stands for `torch.Tensor` / `torch.nn.Parameter` (named by `_rebuild_from_type_v2`)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


class StorageRef(Sealed):
    """A storage of the file: `numel` elements of `dtype`, starting `offset` elements into the
    stored storage `key` (legacy storage views; 0 otherwise)."""

    __slots__ = ("key", "dtype", "numel", "offset")

    def __init__(self, key, dtype, numel, offset=0):
        self.key, self.dtype, self.numel, self.offset = key, dtype, numel, offset

    def __repr__(self):
        return f"StorageRef({self.key!r}, {self.dtype}, numel={self.numel}, offset={self.offset})"


class TensorRef(Sealed):
    """A tensor: `shape` and `strides` (in elements) over a storage, from element `offset`."""

    __slots__ = ("storage", "offset", "shape", "strides", "dtype")

    def __init__(self, storage, offset, shape, strides, dtype):
        self.storage, self.offset, self.shape, self.strides, self.dtype = (
            storage, offset, shape, strides, dtype)

    def __repr__(self):
        return f"TensorRef({self.dtype}, shape={self.shape}, storage={self.storage.key!r})"


class SafeCallable(Sealed):
    """An allowed global that pickles call (REDUCE): a fresh, sealed wrapper per lookup."""

    __slots__ = ("name", "function")

    def __init__(self, name, function):
        self.name, self.function = name, function

    def __call__(self, *args):
        return self.function(*args)

    def __repr__(self):
        return self.name


# --- the stand-ins for PyTorch's rebuild functions ----------------------------------------------

def _ints(value, what):
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) for v in value):
        raise pickle.UnpicklingError(f"tensor {what} must be a tuple of ints, got {value!r}")
    return tuple(int(v) for v in value)


def _tensor(storage, offset, size, stride, dtype):
    if not isinstance(storage, StorageRef):
        raise pickle.UnpicklingError(f"a tensor needs a storage, got {storage!r}")
    if not isinstance(offset, int) or offset < 0:
        raise pickle.UnpicklingError(f"bad tensor storage offset {offset!r}")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride) or min(size + stride, default=0) < 0:
        raise pickle.UnpicklingError(f"bad tensor size {size} / stride {stride}")
    return TensorRef(storage, offset, size, stride, dtype)


def _rebuild_tensor(storage, storage_offset, size, stride):
    # PyTorch < 0.4 (and what v2 extends): the dtype is the storage's.
    return _tensor(storage, storage_offset, size, stride, getattr(storage, "dtype", None))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    # requires_grad, hooks (an empty OrderedDict) and metadata (conj/neg flags) carry no values.
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    # Dtypes without a typed storage (uint16/32/64) sit on an untyped (byte) storage.
    if not isinstance(dtype, TorchDType):
        raise pickle.UnpicklingError(f"a v3 tensor needs a torch dtype, got {dtype!r}")
    return _tensor(storage, storage_offset, size, stride, dtype.name)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, TensorRef):
        raise pickle.UnpicklingError(f"a parameter needs a tensor, got {data!r}")
    return data


def _rebuild_from_type_v2(function, new_type, args, state):
    # Tensor subclasses pickle as (rebuild function, class, args, python state); only plain
    # tensors and parameters are accepted, and the function must itself be an allowed one.
    if not isinstance(function, SafeCallable) or not isinstance(new_type, TensorClass):
        raise pickle.UnpicklingError(f"cannot rebuild a {new_type!r} with {function!r}")
    return function(*args)


# numpy-style name of the elements of each storage type; bfloat16 is widened later.
STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
    "UntypedStorage": "uint8",
}
TORCH_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
                "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128")

_FUNCTIONS = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Size"): tuple,
}


def allowed_global(module, name):
    """The stand-in for global `module.name`, or ForbiddenGlobalError."""
    if (module, name) == ("collections", "OrderedDict"):
        # A plain container; the state dicts are OrderedDicts (with a `_metadata` attribute).
        return collections.OrderedDict
    if (module, name) in _FUNCTIONS:
        return SafeCallable(f"{module}.{name}", _FUNCTIONS[module, name])
    # torch.cuda.FloatStorage etc. only in very old files; CPU and CUDA bytes are the same.
    if module in ("torch", "torch.cuda", "torch.storage") and name in STORAGE_DTYPES:
        return StorageType(name, STORAGE_DTYPES[name])
    if module == "torch" and name in TORCH_DTYPES:
        return TorchDType(name)
    if (module, name) in (("torch", "Tensor"), ("torch.nn.parameter", "Parameter")):
        return TensorClass(f"{module}.{name}")
    # Protocol-2 pickles spell Python 3 modules the Python 2 way (__builtin__ for builtins).
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    raise ForbiddenGlobalError(
        f"forbidden global '{module}.{name}': a checkpoint may only name tensor-rebuilding "
        "globals; this file would run other code when loaded with torch.load (it may be "
        "malicious)")


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a PyTorch checkpoint pickle; `storages` collects the storages it references.

    `storages` maps each stored storage key to its (dtype, numel); the format reader fetches
    their bytes.
    """

    def __init__(self, file):
        super().__init__(file, encoding="utf-8")
        self.storages = {}
        self._views = {}

    def find_class(self, module, name):
        return allowed_global(module, name)

    def persistent_load(self, pid):
        # Zip format: ('storage', type, key, location, numel); legacy adds view_metadata.
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            kind = pid[0] if isinstance(pid, tuple) and pid else pid
            raise pickle.UnpicklingError(
                f"unsupported persistent id {kind!r} (only tensor storages are read; a pickled "
                "nn.Module is not a state dict)")
        if len(pid) not in (5, 6):
            raise pickle.UnpicklingError(f"malformed storage id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, StorageType) or not isinstance(key, str) or not (
                isinstance(numel, int) and numel >= 0):
            raise pickle.UnpicklingError(f"malformed storage id {pid!r}")
        known = self.storages.setdefault(key, (storage_type.dtype, numel))
        if known != (storage_type.dtype, numel):
            raise pickle.UnpicklingError(f"storage {key!r} is declared twice, differently")
        if view is None:
            return StorageRef(key, storage_type.dtype, numel)
        # Storage views of early PyTorch (modern torch never writes them): (view key, offset,
        # size) in elements of the root storage.
        view_key, offset, size = view
        if not (isinstance(offset, int) and isinstance(size, int) and offset >= 0 and size >= 0
                and offset + size <= numel):
            raise pickle.UnpicklingError(f"storage view {view!r} exceeds storage {key!r}")
        return self._views.setdefault(view_key,
                                      StorageRef(key, storage_type.dtype, size, offset))
