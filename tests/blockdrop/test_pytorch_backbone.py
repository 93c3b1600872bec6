"""BlockDrop on a backbone read from a released-format PyTorch checkpoint: the converter's
bL-ResNet-50, gated per image, equals the PyTorch model with the same blocks dropped by hand
(a dropped block returns its shortcut: identity, or the average-pool / projection shortcut)."""

import numpy as np

from bl_keras import blockdrop, models
from tests.convert.helpers import converted_reference, import_torch

torch = import_torch()

SIZE = 64
# Dropped per image, by the Keras block path: a first big-branch block (strided, projection
# shortcut), a little-branch block, an identity big block, a fusion block, the first block of
# layer4 (strided projection) and the last block.
DROPS = [
    [],
    ["layer1/big/block0", "layer2/little/stage/block0", "layer3/big/block2"],
    ["layer1/fusion", "layer3/fusion", "layer4/block0", "layer4/block2"],
]


def torch_block(model, path):
    """The PyTorch module of a Keras block path (the released module names)."""
    parts = path.split("/")
    layer = getattr(model, parts[0])
    if parts[0] == "layer4":
        return layer[int(parts[1].removeprefix("block"))]
    if parts[1] == "big":
        return layer.big[int(parts[2].removeprefix("block"))]
    return layer.little[int(parts[3].removeprefix("block"))] if parts[1] == "little" \
        else layer.fusion[0]


def shortcut_only(block):
    return lambda x: x if block.downsample is None else block.downsample(x)


def test_gated_converted_backbone_equals_pytorch_with_blocks_dropped(tmp_path):
    model, backbone = converted_reference(torch, tmp_path, size=SIZE)
    network = blockdrop.BlockDropNetwork(backbone, blockdrop.cifar_policy(19))
    assert network.block_paths == [b.path for b in models.residual_blocks(backbone)]
    policy = np.ones((len(DROPS), network.num_blocks), np.float32)
    for row, dropped in enumerate(DROPS):
        for path in dropped:
            policy[row, network.block_paths.index(path)] = 0.0
    images = np.random.default_rng(0).normal(size=(len(DROPS), SIZE, SIZE, 3)).astype("float32")
    gathered = network.run(images, policy, training=False).numpy()
    masked = network.run(images, policy, training=False, dynamic=False).numpy()

    expected = []
    for image, dropped in zip(images, DROPS):
        blocks = [torch_block(model, path) for path in dropped]
        for block in blocks:
            block.forward = shortcut_only(block)
        with torch.no_grad():
            expected.append(model(torch.from_numpy(image.transpose(2, 0, 1)[None])).numpy()[0])
        for block in blocks:
            del block.forward  # the class's forward again
    expected = np.stack(expected)
    assert np.abs(expected[0] - expected[1]).max() > 1e-2  # the drops change the output
    assert np.abs(gathered - expected).max() <= 1e-4
    assert np.abs(masked - expected).max() <= 1e-4
