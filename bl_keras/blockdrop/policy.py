"""BlockDrop's policy networks: a small ResNet that looks at the image once and outputs, for each
of the backbone's K residual blocks, the probability of running it.

* `cifar_policy(K)`: the authors' ResNet-8 for 32x32 inputs (`Policy32`): the CIFAR ResNet with
  one basic block per stage (16/32/64 channels, option-A shortcuts), global average pool, a
  dense layer to K sigmoid outputs. 12.2 M MACs at 32x32 (9.4 M at 28x28).
* `imagenet_policy(K)`: the authors' ResNet-10 (`Policy224`): the image averaged down 2x
  (224 -> 112), ResNet's 7x7/2 stem and max-pool, four stages of one basic block (64, 128, 256,
  512 channels, 1x1 conv + BN projections), global average pool, K sigmoid outputs. The authors
  start it from ImageNet ResNet-18's stem and first block of each stage: `start_from_resnet18`
  does the same from a torchvision ResNet-18 checkpoint (else it starts from scratch).

* `decathlon_policy(K)`: SpotTune's agent for 64x64 inputs: the Visual Decathlon ResNet with
  one block per stage (32-channel stem, 64/128/256 channels, each stage striding 2).

Every one is an ordinary functional model of the package's layers. With `choices=1` (BlockDrop)
the output "probabilities" holds K sigmoids; with `choices=2` (SpotTune) the output "logits"
holds two logits per block, [batch, 2K] ordered block by block.
"""

import keras

from bl_keras.layers import ResidualStage
from bl_keras.layers.norm import norm_config
from bl_keras.layers.stem import ResNetStem
from bl_keras.models.cifar import cifar_resnet, decathlon_resnet

CHOICES = (1, 2)


def _head(features, num_blocks, name, choices=1):
    if choices not in CHOICES:
        raise ValueError(f"choices must be 1 (a probability per block) or 2 (two logits per "
                         f"block), got {choices!r}")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features.output)
    # float32 outputs under mixed precision: they feed log-probabilities and sampling.
    if choices == 1:
        outputs = keras.layers.Dense(num_blocks, activation="sigmoid", name="probabilities",
                                     dtype="float32")(x)
    else:
        outputs = keras.layers.Dense(2 * num_blocks, name="logits", dtype="float32")(x)
    return keras.Model(features.input, outputs, name=name)


def cifar_policy(num_blocks, input_shape=None, norm=None, name="policy_resnet8", choices=1,
                 downsample=1):
    """The ResNet-8 policy for 28-32 pixel inputs with `num_blocks` outputs; `downsample` > 1
    averages the image down by that factor first (as the ImageNet policy does by 2): 2 makes
    the policy 4x cheaper."""
    if not isinstance(downsample, int) or downsample < 1:
        raise ValueError(f"downsample must be a positive integer, got {downsample!r}")
    features = cifar_resnet(depth=8, include_top=False, input_shape=input_shape, norm=norm,
                            name=name)
    if downsample > 1:
        inputs = keras.Input(input_shape or (None, None, 3), name="images")
        pooled = keras.layers.AveragePooling2D(downsample, name="downsample")(inputs)
        features = keras.Model(inputs, features(pooled), name=name)
    return _head(features, num_blocks, name, choices)


def decathlon_policy(num_blocks, input_shape=None, norm=None, name="agent_resnet8",
                     choices=2):
    """SpotTune's agent: the Decathlon ResNet with one block per stage (64x64 inputs)."""
    features = decathlon_resnet(8, include_top=False, input_shape=input_shape, norm=norm,
                                name=name)
    return _head(features, num_blocks, name, choices)


def imagenet_policy(num_blocks, input_shape=None, norm=None, name="policy_resnet10",
                    choices=1):
    """The ResNet-10 policy on the image downsampled 2x, with `num_blocks` outputs."""
    norm = norm_config(norm)
    inputs = keras.Input(input_shape or (None, None, 3), name="images")
    x = keras.layers.AveragePooling2D(2, name="downsample")(inputs)
    x = ResNetStem(64, norm=norm, name="stem")(x)
    block_config = dict(shortcut="conv", zero_gamma=False)
    for i, (filters, strides) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
        x = ResidualStage(filters, 1, strides=strides, block="basic", block_config=block_config,
                          norm=norm, name=f"layer{i + 1}")(x)
    return _head(keras.Model(inputs, x, name=name), num_blocks, name, choices)


def start_from_resnet18(policy, checkpoint):
    """Load the stem and each stage's first block of a torchvision ResNet-18 (a `.pth` file or
    its state dict: conv1/bn1, layer{i}.0.*) into the ResNet-10 `policy`, as the authors'
    `load_weights_to_flatresnet` does; the second blocks and the classifier are not used and
    the K-way head keeps its initialisation. A checkpoint that lacks a tensor of the policy or
    has it in another shape raises `CheckpointMismatchError`, and nothing is assigned."""
    from bl_keras.convert import load_official_weights, read_state_dict

    if not {"stem", "layer4"} <= {layer.name for layer in policy.layers}:
        raise ValueError(f"{policy.name} is not the ResNet-10 policy (resnet10): it has no "
                         "ResNet stem and layer1-4 to start from ResNet-18")
    state_dict = checkpoint if isinstance(checkpoint, dict) else read_state_dict(checkpoint)
    features = keras.Model(policy.input, policy.get_layer("layer4").output)
    load_official_weights(features, state_dict, allow_unused=True)
    return policy


POLICIES = {"resnet8": cifar_policy, "decathlon_resnet8": decathlon_policy,
            "resnet10": imagenet_policy}


def policy_for(num_blocks, image_size, kind=None, choices=1, downsample=1):
    """The authors' policy for images of `image_size` pixels: ResNet-8 below 64, else
    ResNet-10 (or `kind`); `choices` and `downsample` (ResNet-8 only) as `cifar_policy`."""
    if kind is None:
        kind = "resnet8" if image_size < 64 else "resnet10"
    if kind not in POLICIES:
        raise ValueError(f"unknown policy network {kind!r}; valid: {sorted(POLICIES)}")
    if downsample != 1:
        if kind != "resnet8":
            raise ValueError(f"downsample applies to the resnet8 policy (resnet10 always "
                             f"averages 224 -> 112), got it with {kind!r}")
        return cifar_policy(num_blocks, choices=choices, downsample=downsample)
    return POLICIES[kind](num_blocks, choices=choices)
