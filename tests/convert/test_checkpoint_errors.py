"""read_state_dict rejects missing, damaged, tensor-less and hostile files, naming file and cause.

The hostile files carry a `__reduce__` payload that would create a marker file if executed: the
marker must not exist afterwards, and a plain `pickle.load` shows the payload is live.
"""

import builtins
import os
import pickle

import numpy as np
import pytest

from bl_keras.convert import CheckpointReadError, read_state_dict
from tests.convert.helpers import import_torch


def read_error(path):
    with pytest.raises(CheckpointReadError) as err:
        read_state_dict(path)
    assert str(path) in str(err.value)
    return str(err.value)


class SystemCall:
    """Unpickling this runs a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class Eval:
    """Unpickling this evaluates Python code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


PAYLOADS = [
    pytest.param(SystemCall, f"{os.system.__module__}.system", id="os.system"),
    pytest.param(Eval, "builtins.eval", id="builtins.eval"),
]


def real_tensors(torch):
    return {"conv.weight": torch.randn(4, 3, 3, 3), "bn.running_var": torch.rand(4) + 0.5}


def test_error_is_a_value_error():
    assert issubclass(CheckpointReadError, ValueError)


def test_missing_file(tmp_path):
    assert "no such file" in read_error(tmp_path / "absent.pth")


def test_directory(tmp_path):
    assert "is a directory" in read_error(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint", b"PK\x03\x04garbage",
                                     b"\x80\x02garbage"], ids=["empty", "text", "zip", "pickle"])
def test_garbage(tmp_path, content):
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    message = read_error(path)
    assert any(word in message for word in ("not a PyTorch checkpoint", "corrupt", "truncated"))


@pytest.mark.parametrize("payload, name", PAYLOADS)
def test_plain_pickle_payload_is_refused_and_not_run(tmp_path, payload, name):
    marker = tmp_path / "marker"
    data = pickle.dumps(payload(marker), protocol=2)
    # The payload is live: plain pickle runs it.
    pickle.loads(data)
    assert marker.exists()
    marker.unlink()
    path = tmp_path / "evil.pth"
    path.write_bytes(data)
    message = read_error(path)
    assert f"forbidden global '{name}'" in message
    assert not marker.exists()


def test_allowed_module_with_forbidden_name(tmp_path):
    # GLOBAL 'torch load' (torch.load would unpickle anything), then call it.
    path = tmp_path / "evil.pth"
    path.write_bytes(b"\x80\x02ctorch\nload\nX\x01\x00\x00\x00x\x85R.")
    assert "forbidden global 'torch.load'" in read_error(path)


def test_pickle_cannot_modify_an_allowed_function(tmp_path):
    # GLOBAL torch._utils._rebuild_tensor_v2, then BUILD (set its state) with {}.
    path = tmp_path / "evil.pth"
    path.write_bytes(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}b.")
    assert "tries to set the state of torch._utils._rebuild_tensor_v2" in read_error(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("payload, name", PAYLOADS)
def test_payload_inside_a_torch_checkpoint(tmp_path, legacy, payload, name):
    torch = import_torch()
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": real_tensors(torch), "optimizer": payload(marker)}, path,
               _use_new_zipfile_serialization=not legacy)
    message = read_error(path)
    assert f"forbidden global '{name}'" in message
    assert not marker.exists()


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.99])
def test_truncated_zip(tmp_path, fraction):
    torch = import_torch()
    path = tmp_path / "cut.pth"
    torch.save(real_tensors(torch), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    assert "corrupt or truncated zip" in read_error(path)


def test_corrupt_zip_storage(tmp_path):
    torch = import_torch()
    path = tmp_path / "flipped.pth"
    torch.save({"w": torch.zeros(1000)}, path)
    data = bytearray(path.read_bytes())
    start = data.index(bytes(4000))  # the zeros of the storage record
    data[start + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "Bad CRC-32" in read_error(path)


def legacy_boundaries(torch, path):
    """Byte offsets in a legacy file: (inside the header, inside the object, inside storages)."""
    torch.save(real_tensors(torch), path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    storage_start = len(data) - 2 * 8 - (4 * 3 * 3 * 3 + 4) * 4  # two counts, 112 floats
    return data, [5, 200, storage_start + 4, len(data) - 1]


def test_truncated_legacy(tmp_path):
    torch = import_torch()
    path = tmp_path / "whole.pth"
    data, cuts = legacy_boundaries(torch, path)
    np.testing.assert_array_equal(read_state_dict(path)["bn.running_var"].shape, (4,))
    for cut in cuts:
        short = tmp_path / f"cut{cut}.pth"
        short.write_bytes(data[:cut])
        assert "truncated" in read_error(short), cut


@pytest.mark.parametrize("obj, problem", [
    ({"epoch": 3, "arch": "x"}, "holds no tensors (keys: epoch, arch)"),
    ({"state_dict": {}, "epoch": 3}, "holds no tensors"),
    ([1, 2], "holds a list, not a state dict"),
])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_no_tensors(tmp_path, obj, problem, legacy):
    torch = import_torch()
    path = tmp_path / "empty.pth"
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    assert problem in read_error(path)
