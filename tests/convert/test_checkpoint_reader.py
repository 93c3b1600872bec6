"""read_state_dict on files written by real torch.save, in both PyTorch formats."""

import collections
import pickle
import struct
import zipfile

import numpy as np
import pytest

from bl_keras.convert import read_state_dict
from bl_keras.convert.checkpoint import LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION
from tests.convert.helpers import import_torch, save_checkpoint

torch = import_torch()

FORMATS = [pytest.param(False, id="zip"), pytest.param(True, id="legacy")]


def awkward_state_dict():
    """A module's state dict plus the tensor layouts a checkpoint can hold."""
    generator = torch.Generator().manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
                                 torch.nn.Linear(8, 4))
    module[1].num_batches_tracked.fill_(123456789012)  # int64, beyond int32
    state = module.state_dict()
    base = torch.randn(6, 10, generator=generator)
    state.update({
        "transposed": base.t(),                          # strides (1, 10)
        "sliced": base[2:5, 1::3],                       # offset 21, strides (10, 3)
        "expanded": base[0:1, :4].expand(3, 4),          # stride 0
        "scalar": torch.tensor(3.25, dtype=torch.float64),
        "half": torch.randn(5, 7, generator=generator).half()[:, 2:],
        "bfloat16": torch.randn(9, generator=generator).bfloat16(),
        "int32": torch.arange(-4, 8, dtype=torch.int32).reshape(3, 4),
        "uint8": torch.arange(250, 256, dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]).t(),
        "empty": torch.zeros(0, 3),
    })
    return state


def expected(tensor):
    # numpy has no bfloat16; the reader widens it to float32, exactly.
    return tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()


def assert_same(read, state_dict):
    assert list(read) == list(state_dict)
    for name, tensor in state_dict.items():
        want = expected(tensor)
        assert read[name].dtype == want.dtype, name
        assert read[name].shape == want.shape, name
        np.testing.assert_array_equal(read[name], want, err_msg=name)
        assert read[name].flags.c_contiguous and read[name].flags.writeable


@pytest.mark.parametrize("legacy", FORMATS)
@pytest.mark.parametrize("wrap", [False, True], ids=["bare", "training_dict"])
def test_values_equal_tensor_numpy(tmp_path, legacy, wrap):
    state = awkward_state_dict()
    prefix = "module." if wrap else ""
    path = save_checkpoint(torch, state, tmp_path / "x.pth.tar", legacy=legacy, prefix=prefix,
                           wrap=wrap)
    read = read_state_dict(path)
    assert_same(read, {prefix + k: v for k, v in state.items()})
    assert read[prefix + "1.num_batches_tracked"].dtype == np.int64
    assert int(read[prefix + "1.num_batches_tracked"]) == 123456789012
    assert read[prefix + "sliced"][0, 0] == state["sliced"][0, 0].item()


@pytest.mark.parametrize("legacy", FORMATS)
def test_optimizer_state_is_skipped(tmp_path, legacy):
    # A real SGD state (momentum buffers, param groups) beside the model, as the released files.
    module = torch.nn.Linear(5, 3)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    module(torch.ones(2, 5)).sum().backward()
    optimizer.step()
    path = tmp_path / "train.pth"
    torch.save({"epoch": 7, "arch": "x", "state_dict": module.state_dict(),
                "best_top1": torch.tensor(70.0), "optimizer": optimizer.state_dict()},
               path, _use_new_zipfile_serialization=not legacy)
    read = read_state_dict(path)
    assert sorted(read) == ["bias", "weight"]
    np.testing.assert_array_equal(read["weight"], module.weight.detach().numpy())


@pytest.mark.parametrize("legacy", FORMATS)
def test_parameters_and_shared_storages(tmp_path, legacy):
    # nn.Parameter pickles through _rebuild_parameter; two views may share one storage.
    weight = torch.nn.Parameter(torch.arange(12.0).reshape(3, 4))
    state = {"param": weight, "row": weight.data[1], "column": weight.data[:, 2]}
    path = tmp_path / "p.pth"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    read = read_state_dict(path)
    np.testing.assert_array_equal(read["param"], np.arange(12.0, dtype=np.float32).reshape(3, 4))
    np.testing.assert_array_equal(read["row"], [4.0, 5.0, 6.0, 7.0])
    np.testing.assert_array_equal(read["column"], [2.0, 6.0, 10.0])


def test_legacy_storage_view(tmp_path):
    # Early PyTorch saved storage views as (view key, offset, size) in the persistent id;
    # modern torch cannot write them, so the file is assembled here with torch's own globals.
    class Storage:
        pass

    class Tensor:
        def __init__(self, storage, offset, size, stride):
            self.args = (storage, offset, size, stride, False, collections.OrderedDict())

        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, self.args

    view = Storage()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is view:
                return ("storage", torch.FloatStorage, "root", "cpu", 6, ("view", 2, 3))
            return None

    values = np.arange(6, dtype="<f4") * 1.5
    with open(tmp_path / "old.pth", "wb") as file:
        for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(header, file, protocol=2)
        Pickler(file, protocol=2).dump({"w": Tensor(view, 1, (2,), (1,))})
        pickle.dump(["root"], file, protocol=2)
        file.write(struct.pack("<q", 6) + values.tobytes())
    read = read_state_dict(tmp_path / "old.pth")
    # The view starts 2 elements into the root storage, the tensor 1 element into the view.
    np.testing.assert_array_equal(read["w"], values[3:5])


def test_big_endian_zip(tmp_path):
    # A file saved on a big-endian machine: byteorder record 'big', storages byte-swapped.
    weight = torch.randn(3, 5, generator=torch.Generator().manual_seed(3)).t()
    torch.save({"w": weight}, tmp_path / "little.pth")
    with zipfile.ZipFile(tmp_path / "little.pth") as little, \
            zipfile.ZipFile(tmp_path / "big.pth", "w") as big:
        for info in little.infolist():
            data = little.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
            big.writestr(info, data)
    read = read_state_dict(tmp_path / "big.pth")
    np.testing.assert_array_equal(read["w"], weight.numpy())
    assert read["w"].dtype == np.float32 and read["w"].dtype.isnative
    # PyTorch reads the rewritten file the same way.
    np.testing.assert_array_equal(torch.load(tmp_path / "big.pth")["w"].numpy(), weight.numpy())
