"""The PyTorch tensor names and shapes a convertible model takes, from its spec alone.

Building a Keras model to read its weight map takes seconds (bL-ResNet-152: ~4 s on 2 cores), too
slow to try every architecture on a checkpoint that does not fit. The released layout is a
function of the model's spec (`bl_keras.models.specs`), alpha, beta and the number of classes,
computed here in milliseconds; the tests check it against `expected_state_dict_shapes` of the
built models. BatchNorm `num_batches_tracked` counters are not included.
"""

import functools

from bl_keras.layers.blocks import bottleneck_width
from bl_keras.layers.module import little_depth
from bl_keras.models import specs

_BN_PARAMETERS = ("weight", "bias", "running_mean", "running_var")
_STEM = 64  # the stem's output channels in every released model


def _conv(kernel, cin, cout, groups=1):
    return (cout, cin // groups, kernel, kernel)


def _conv_bn(shapes, conv_name, bn_name, kernel, cin, cout, groups=1):
    shapes[f"{conv_name}.weight"] = _conv(kernel, cin, cout, groups)
    for parameter in _BN_PARAMETERS:
        shapes[f"{bn_name}.{parameter}"] = (cout,)


def _bottleneck(shapes, prefix, cin, cout, strides, block, shortcut):
    """conv1-3 / bn1-3, the shortcut's conv + BN (after the pool, if pooled) and SE."""
    width = bottleneck_width(cout, block["cardinality"], block["base_width"])
    _conv_bn(shapes, f"{prefix}.conv1", f"{prefix}.bn1", 1, cin, width)
    _conv_bn(shapes, f"{prefix}.conv2", f"{prefix}.bn2", 3, width, width, block["cardinality"])
    _conv_bn(shapes, f"{prefix}.conv3", f"{prefix}.bn3", 1, width, cout)
    pooled = shortcut == "avgpool" and strides != 1
    if cin != cout or (strides != 1 and shortcut == "conv"):
        first = 1 if pooled else 0
        _conv_bn(shapes, f"{prefix}.downsample.{first}", f"{prefix}.downsample.{first + 1}", 1,
                 cin, cout)
    if block["se_reduction"]:
        hidden = cout // block["se_reduction"]
        shapes[f"{prefix}.se_layer.fc1.weight"] = (hidden, cout, 1, 1)
        shapes[f"{prefix}.se_layer.fc1.bias"] = (hidden,)
        shapes[f"{prefix}.se_layer.fc2.weight"] = (cout, hidden, 1, 1)
        shapes[f"{prefix}.se_layer.fc2.bias"] = (cout,)


def _stage(shapes, prefix, cin, cout, num_blocks, strides, block, shortcut):
    for j in range(num_blocks):
        _bottleneck(shapes, f"{prefix}.{j}", cin if j == 0 else cout, cout,
                    strides if j == 0 else 1, block, shortcut)


def _thin(block, alpha):
    # As `bl_keras.layers.branches.thin_block_config`: grouped blocks keep the per-group width.
    if block["cardinality"] > 1:
        return dict(block, cardinality=block["cardinality"] // alpha,
                    base_width=block["base_width"] * alpha)
    return block


def _big_little(shapes, depths, block, alpha, beta):
    little = _STEM // alpha
    _conv_bn(shapes, "conv1", "bn1", 7, 3, _STEM)
    _conv_bn(shapes, "b_conv0", "bn_b0", 3, _STEM, _STEM)
    _conv_bn(shapes, "l_conv0", "bn_l0", 3, _STEM, little)
    _conv_bn(shapes, "l_conv1", "bn_l1", 3, little, little)
    _conv_bn(shapes, "l_conv2", "bn_l2", 1, little, _STEM)
    _conv_bn(shapes, "bl_init", "bn_bl_init", 1, _STEM, _STEM)
    cin = _STEM
    for i in range(3):
        cout, name = specs.STAGE_FILTERS[i], f"layer{i + 1}"
        _stage(shapes, f"{name}.big", cin, cout, depths[i] - 1, 2, block, "avgpool")
        _stage(shapes, f"{name}.little", cin, cout // alpha, little_depth(depths[i], beta), 1,
               _thin(block, alpha), "avgpool")
        _conv_bn(shapes, f"{name}.little_e.0", f"{name}.little_e.1", 1, cout // alpha, cout)
        _bottleneck(shapes, f"{name}.fusion.0", cout, cout, specs.BIG_LITTLE_STRIDES[i], block,
                    "avgpool")
        cin = cout
    _stage(shapes, "layer4", cin, specs.STAGE_FILTERS[3], depths[3],
           specs.BIG_LITTLE_STRIDES[3], block, "avgpool")


def _plain(shapes, depths, block):
    _conv_bn(shapes, "conv1", "bn1", 7, 3, _STEM)
    cin = _STEM
    for i, (cout, strides) in enumerate(zip(specs.STAGE_FILTERS, specs.PLAIN_STRIDES)):
        _stage(shapes, f"layer{i + 1}", cin, cout, depths[i], strides, block, "conv")
        cin = cout


def convertible_models():
    """Model names with a PyTorch weight mapping: the ResNet family of Tables 1-2 (the released
    models and their torchvision-layout baselines)."""
    return sorted(specs.IMAGE_MODELS)


@functools.lru_cache(maxsize=None)
def _cached(name, alpha, beta, classes):
    family, depth, big_little = specs.IMAGE_MODELS[name]
    block = specs.FAMILIES[family]
    shapes = {}
    if big_little:
        _big_little(shapes, specs.BIG_LITTLE_DEPTHS[depth], block, alpha, beta)
    else:
        _plain(shapes, specs.PLAIN_DEPTHS[depth], block)
    shapes["fc.weight"] = (classes, specs.STAGE_FILTERS[3])
    shapes["fc.bias"] = (classes,)
    return tuple(shapes.items())


def spec_state_dict_shapes(name, alpha=2, beta=4, classes=1000):
    """{PyTorch tensor name: shape} of model `name` (a key of `specs.IMAGE_MODELS`).

    `alpha` and `beta` matter to bL models only. Equal to `expected_state_dict_shapes` of the
    model built with the same options, in the same order.
    """
    if name not in specs.IMAGE_MODELS:
        raise ValueError(f"no released tensor layout for {name!r}; valid: "
                         f"{', '.join(sorted(specs.IMAGE_MODELS))}")
    if not specs.IMAGE_MODELS[name][2]:
        alpha, beta = 2, 4  # unused: one cache entry per plain model
    return dict(_cached(name, int(alpha), int(beta), int(classes)))
