"""BlockDrop's policy networks: a small ResNet that looks at the image once and outputs, for each
of the backbone's K residual blocks, the probability of running it.

* `cifar_policy(K)`: the authors' ResNet-8 for 32x32 inputs (`Policy32`): the CIFAR ResNet with
  one basic block per stage (16/32/64 channels, option-A shortcuts), global average pool, a
  dense layer to K sigmoid outputs. 12.2 M MACs at 32x32 (9.4 M at 28x28).
* `imagenet_policy(K)`: the authors' ResNet-10 (`Policy224`): the image averaged down 2x
  (224 -> 112), ResNet's 7x7/2 stem and max-pool, four stages of one basic block (64, 128, 256,
  512 channels, 1x1 conv + BN projections), global average pool, K sigmoid outputs. The authors
  start it from ResNet-18's first blocks; here it starts from scratch unless weights are given.

Both are ordinary functional models of the package's layers ("probabilities" is the output).
"""

import keras

from bl_keras.layers import ResidualStage
from bl_keras.layers.norm import norm_config
from bl_keras.layers.stem import ResNetStem
from bl_keras.models.cifar import cifar_resnet


def _head(features, num_blocks, name):
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features.output)
    # float32 probabilities under mixed precision: they feed log-probabilities and sampling.
    probabilities = keras.layers.Dense(num_blocks, activation="sigmoid", name="probabilities",
                                       dtype="float32")(x)
    return keras.Model(features.input, probabilities, name=name)


def cifar_policy(num_blocks, input_shape=None, norm=None, name="policy_resnet8"):
    """The ResNet-8 policy for 28-32 pixel inputs with `num_blocks` outputs."""
    features = cifar_resnet(depth=8, include_top=False, input_shape=input_shape, norm=norm,
                            name=name)
    return _head(features, num_blocks, name)


def imagenet_policy(num_blocks, input_shape=None, norm=None, name="policy_resnet10"):
    """The ResNet-10 policy on the image downsampled 2x, with `num_blocks` outputs."""
    norm = norm_config(norm)
    inputs = keras.Input(input_shape or (None, None, 3), name="images")
    x = keras.layers.AveragePooling2D(2, name="downsample")(inputs)
    x = ResNetStem(64, norm=norm, name="stem")(x)
    block_config = dict(shortcut="conv", zero_gamma=False)
    for i, (filters, strides) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
        x = ResidualStage(filters, 1, strides=strides, block="basic", block_config=block_config,
                          norm=norm, name=f"layer{i + 1}")(x)
    return _head(keras.Model(inputs, x, name=name), num_blocks, name)


POLICIES = {"resnet8": cifar_policy, "resnet10": imagenet_policy}


def policy_for(num_blocks, image_size, kind=None):
    """The authors' policy for images of `image_size` pixels: ResNet-8 below 64, else
    ResNet-10 (or `kind`)."""
    if kind is None:
        kind = "resnet8" if image_size < 64 else "resnet10"
    if kind not in POLICIES:
        raise ValueError(f"unknown policy network {kind!r}; valid: {sorted(POLICIES)}")
    return POLICIES[kind](num_blocks)
