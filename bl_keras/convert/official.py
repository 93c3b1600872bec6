"""Weights of the authors' released PyTorch models (and torchvision-style baselines) into Keras.

The mapping is derived by walking the Keras model, so it exists for every architecture the
builder makes. PyTorch names follow the released code (`blresnet.py` / `blresnext.py`):

    conv1/bn1, b_conv0/bn_b0, l_conv0..2/bn_l0..2, bl_init/bn_bl_init   -> stem
    layer{i}.big.{j}, layer{i}.little.{j}, layer{i}.little_e.{0,1},
    layer{i}.fusion.0                                                  -> bL-module i (1-3)
    layer4.{j} (and layer{i}.{j} of plain models)                      -> residual stages
    fc                                                                 -> predictions
and within a block: conv1/bn1, conv2/bn2, conv3/bn3, downsample.{k} (the conv and BN after an
optional average pool), se_layer.fc1/fc2.

Layouts: conv (out, in/groups, kh, kw) -> (kh, kw, in/groups, out); linear (out, in) -> (in, out).
"""

import numpy as np

from bl_keras import layers as bl_layers
from bl_keras.convert.checkpoint import read_state_dict
from bl_keras.convert.fit import BN_COUNTER, suggest_architectures
from bl_keras.convert.mismatch import CheckpointMismatchError

_BN = (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
       ("running_var", "moving_variance"))


def strip_module_prefix(state_dict):
    """Drop the `module.` prefix that `DataParallel` checkpoints carry."""
    return {
        (k[len("module."):] if k.startswith("module.") else k): v for k, v in state_dict.items()
    }


# --- the mapping: a list of (torch prefix, kind, keras layer) -----------------------------------

def _conv_bn(prefix_conv, prefix_bn, layer):
    return [(prefix_conv, "conv", layer.conv), (prefix_bn, "bn", layer.bn)]


def _block(prefix, block):
    """A `Bottleneck` (conv1-3) or a `BasicBlock` (conv1-2, torchvision's basic block)."""
    pairs = []
    convs = block.convs if isinstance(block, bl_layers.BasicBlock) else (
        block.conv1, block.conv2, block.conv3)
    for i, conv in enumerate(convs, start=1):
        pairs += _conv_bn(f"{prefix}.conv{i}", f"{prefix}.bn{i}", conv)
    if block.proj is not None and block.proj.weights:  # option A's zero padding has none
        first = 1 if getattr(block, "pool", None) is not None else 0
        pairs += _conv_bn(f"{prefix}.downsample.{first}", f"{prefix}.downsample.{first + 1}",
                          block.proj)
    if getattr(block, "se", None) is not None:
        pairs += [(f"{prefix}.se_layer.fc1", "conv_bias", block.se.fc1),
                  (f"{prefix}.se_layer.fc2", "conv_bias", block.se.fc2)]
    return pairs


def _stage(prefix, stage):
    pairs = []
    for j, block in enumerate(stage.blocks):
        pairs += _block(f"{prefix}.{j}", block)
    return pairs


def _layer_pairs(layer):
    name = layer.name
    if isinstance(layer, bl_layers.BigLittleStem):
        return (_conv_bn("conv1", "bn1", layer.conv1)
                + _conv_bn("b_conv0", "bn_b0", layer.big_conv)
                + _conv_bn("l_conv0", "bn_l0", layer.little_conv1)
                + _conv_bn("l_conv1", "bn_l1", layer.little_conv2)
                + _conv_bn("l_conv2", "bn_l2", layer.little_expand)
                + _conv_bn("bl_init", "bn_bl_init", layer.fuse))
    if isinstance(layer, bl_layers.ResNetStem):
        return _conv_bn("conv1", "bn1", layer.conv1)
    if isinstance(layer, bl_layers.BigLittleModule):
        if layer.merge != "add" or layer.branches != 2:
            raise ValueError(f"The released models merge two branches by addition; cannot map "
                             f"merge={layer.merge!r}, branches={layer.branches}")
        return (_stage(f"{name}.big", layer.big)
                + _stage(f"{name}.little", layer.little.stage)
                + _conv_bn(f"{name}.little_e.0", f"{name}.little_e.1", layer.little.expand)
                + _block(f"{name}.fusion.0", layer.fusion))
    if isinstance(layer, bl_layers.ResidualStage):
        return _stage(name, layer)
    if name == "predictions":
        return [("fc", "dense", layer)]
    if layer.weights:
        raise ValueError(f"No PyTorch mapping for layer {name!r} ({type(layer).__name__})")
    return []


# Keras layout from PyTorch layout, per kind of tensor.
_TO_KERAS = {"conv": (2, 3, 1, 0), "dense": (1, 0), "vector": (0,)}


def _torch_shape(layout, keras_shape):
    inverse = np.argsort(_TO_KERAS[layout])
    return tuple(int(keras_shape[i]) for i in inverse)


def weight_map(model):
    """[(torch tensor name, keras variable, layout)] for every weight of `model`."""
    entries = []
    for layer in model.layers:
        for prefix, kind, target in _layer_pairs(layer):
            if kind == "bn":
                entries += [(f"{prefix}.{t}", getattr(target, k), "vector") for t, k in _BN]
            elif kind == "dense":
                entries += [(f"{prefix}.weight", target.kernel, "dense"),
                            (f"{prefix}.bias", target.bias, "vector")]
            else:
                entries.append((f"{prefix}.weight", target.kernel, "conv"))
                if kind == "conv_bias":
                    entries.append((f"{prefix}.bias", target.bias, "vector"))
    return entries


def expected_state_dict_shapes(model):
    """{torch tensor name: PyTorch shape} that `model` takes (BN counters not included)."""
    return {name: _torch_shape(layout, var.shape) for name, var, layout in weight_map(model)}


def load_official_weights(model, state_dict, mismatch_report=None, allow_unused=False):
    """Assign a PyTorch state dict (name -> array) to `model`: all of it, or nothing.

    With `allow_unused`, tensors of the state dict that `model` has no place for are left out
    (a network built from the first blocks of a deeper one); every weight of `model` must still
    be found, with its shape.

    A state dict that does not fit raises `CheckpointMismatchError`, which names the
    architectures it does fit; with `mismatch_report` (a path) it also writes every missing,
    unexpected and mis-shaped tensor there.
    """
    state_dict = strip_module_prefix(state_dict)
    entries = weight_map(model)
    expected = {name for name, _, _ in entries}
    # Model order for what is missing, file order for what is extra: as a reader meets them.
    # BatchNorm counters carry nothing the model uses; an extra BN is listed by its parameters.
    missing = [name for name, _, _ in entries if name not in state_dict]
    unexpected = [name for name in state_dict if name not in expected
                  and not name.endswith(BN_COUNTER) and not allow_unused]
    mismatched, values = [], []
    for name, variable, layout in entries:
        if name not in state_dict:
            continue
        value = np.asarray(state_dict[name], dtype=np.float32)
        want = _torch_shape(layout, variable.shape)
        if value.shape != want:
            mismatched.append((name, value.shape, want))
            continue
        values.append((variable, np.transpose(value, _TO_KERAS[layout])))
    if missing or unexpected or mismatched:
        given = sum(not name.endswith(BN_COUNTER) for name in state_dict)
        error = CheckpointMismatchError(missing, unexpected, mismatched,
                                        suggest_architectures(state_dict), len(entries), given)
        if mismatch_report:
            error.write_report(mismatch_report)
        raise error
    for variable, value in values:
        variable.assign(value)
    return model


def from_official(name, state_dict, *, mismatch_report=None, **model_kwargs):
    """Build model `name` (a `bl_keras.models` name) with the weights of a PyTorch state dict.

    `state_dict` maps PyTorch tensor names (with or without `module.`) to arrays. The number of
    classes is taken from `fc.weight` unless given. Upsampling defaults to the released "nearest"
    rule, which converted weights need to reproduce the released outputs. `mismatch_report`:
    see `load_official_weights`.
    """
    from bl_keras import models

    state_dict = strip_module_prefix(state_dict)
    if "classes" not in model_kwargs and "fc.weight" in state_dict:
        model_kwargs["classes"] = int(np.shape(state_dict["fc.weight"])[0])
    model = models.get(name, **model_kwargs)
    return load_official_weights(model, state_dict, mismatch_report)


def from_checkpoint(name, path, *, mismatch_report=None, **model_kwargs):
    """`from_official` on the state dict of the PyTorch checkpoint file at `path`.

    Reads `.pth` / `.pth.tar` files of either PyTorch format without torch and without running
    code from the file (`bl_keras.convert.checkpoint.read_state_dict`).
    """
    return from_official(name, read_state_dict(path), mismatch_report=mismatch_report,
                         **model_kwargs)
