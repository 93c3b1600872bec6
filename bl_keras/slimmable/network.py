"""`SlimmableNetwork`: a classifier executable at any width, and the fixed network of one width.

    model = bl_keras.slimmable.get("mobilenet_v2", classes=1000)
    logits = model(images, width=0.6)          # any width in (0, 1], any input size
    plain = fixed_network(model, 0.6)          # a network with just the 0.6x weights

The architecture is a registered function returning the blocks (`bl_keras.slimmable.blocks`)
and the classifier's input features; each block is called as `block(x, width=w, training=t)`.
Channel counts are those of the nominal architecture scaled by `base_width` (a multiplier, or
a list of multipliers applied in turn with the US-Net rounding: `fixed_network` appends one),
so a network built at a width has exactly the channel counts of that width's sub-network.
"""

import keras
import tensorflow as tf

from bl_keras.slimmable import width as widths
from bl_keras.slimmable.layers import SlimDense, convert_inputs, keep_width_argument

register = keras.saving.register_keras_serializable(package="bl_keras")

ARCHITECTURES = {}


def architecture(name):
    """Register `fn(scale, norm, dtype, **options) -> (blocks, classifier_in_features)`."""
    def decorate(fn):
        ARCHITECTURES[name] = fn
        return fn
    return decorate


def width_chain(base_width):
    chain = tuple(float(w) for w in (base_width if isinstance(base_width, (list, tuple))
                                     else (base_width,)))
    for w in chain:
        widths.check_width(w)
    return chain


@register
class SlimmableNetwork(keras.Model):
    """A slimmable classifier; `call(images, width=1.0, training=None)` returns class scores.

    Args:
        architecture: a key of `ARCHITECTURES` ("mobilenet_v1", "mobilenet_v2", "resnet50",
            "bl_resnet50").
        classes: outputs of the classifier (never slimmed).
        base_width: width multiplier(s) of the network as built (see the module doc).
        norm: BatchNorm options {"momentum", "epsilon"} (Keras semantics).
        classifier_activation: "softmax" or None (logits).
        options: architecture options (e.g. stage_depths, alpha, beta of the ResNets).
    """

    def __init__(self, architecture="mobilenet_v2", classes=1000, base_width=1.0, norm=None,
                 classifier_activation="softmax", options=None, **kwargs):
        super().__init__(**kwargs)
        keep_width_argument(self)
        if architecture not in ARCHITECTURES:
            raise ValueError(f"Unknown slimmable architecture {architecture!r}; valid: "
                             f"{sorted(ARCHITECTURES)}")
        if classifier_activation not in ("softmax", None):
            raise ValueError("classifier_activation must be 'softmax' or None, got "
                             f"{classifier_activation!r}")
        self.architecture = architecture
        self.classes = int(classes)
        self.base_width = width_chain(base_width)
        self.norm = norm
        self.classifier_activation = classifier_activation
        self.options = dict(options or {})

        def scale(channels):
            for multiplier in self.base_width:
                channels = widths.active(channels, multiplier)
            return channels

        blocks, features = ARCHITECTURES[architecture](
            scale=scale, norm=norm, dtype=self.dtype_policy, **self.options)
        # One attribute per block: TF checkpoints follow attributes, not Keras' tracked lists.
        self.num_blocks = len(blocks)
        for i, block in enumerate(blocks):
            setattr(self, f"block{i}", block)
        self.classifier = SlimDense(self.classes, in_features=features, name="predictions",
                                    dtype=self.dtype_policy)
        for layer in self._flatten_layers(include_self=False, recursive=True):
            if not layer.built:
                layer.build(None)
        self.built = True

    @property
    def blocks(self):
        return [getattr(self, f"block{i}") for i in range(self.num_blocks)]

    def __call__(self, *args, **kwargs):
        return super().__call__(*convert_inputs(self, args), **kwargs)

    def call(self, inputs, width=1.0, training=None):
        width = widths.check_width(width) if widths.is_static(width) else (
            widths.assert_width(width))
        x = tf.cast(inputs, self.compute_dtype)
        for block in self.blocks:
            x = block(x, width=width, training=training)
        x = tf.reduce_mean(x, axis=[1, 2])
        x = self.classifier(x, width=width)
        return tf.nn.softmax(x) if self.classifier_activation == "softmax" else x

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
                "architecture": self.architecture, "classes": self.classes,
                "base_width": list(self.base_width), "norm": self.norm,
                "classifier_activation": self.classifier_activation, "options": self.options}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)


def fixed_network(model, width, name=None):
    """A `SlimmableNetwork` holding only the weights of `model`'s sub-network at `width`.

    Called at width 1.0 it computes what `model(x, width=width)` computes; it is smaller to
    store and serve, and its BatchNorm statistics are the ones `model` holds now (calibrate
    first: `bl_keras.slimmable.calibration`).
    """
    widths.check_width(width)
    config = model.get_config()
    config.update(base_width=list(model.base_width) + [float(width)],
                  name=name or f"{model.name}_w{width:g}")
    fixed = SlimmableNetwork.from_config(config)
    if len(fixed.weights) != len(model.weights):
        raise ValueError("fixed network and model differ in structure")
    for source, target in zip(model.weights, fixed.weights):
        if source.path.split("/", 1)[-1] != target.path.split("/", 1)[-1]:
            raise ValueError(f"weight order differs: {source.path} vs {target.path}")
        value = keras.ops.convert_to_numpy(source)
        target.assign(value[tuple(slice(0, n) for n in target.shape)])
    return fixed


def active_params(model, width):
    """Trainable parameters of `model`'s sub-network at `width` (a Python number)."""
    from bl_keras.profiling import count_params

    widths.check_width(width)
    if width == 1.0:
        return count_params(model)
    return count_params(SlimmableNetwork.from_config(
        dict(model.get_config(), base_width=list(model.base_width) + [float(width)])))


def serving_model(model, width, resolution):
    """A functional Keras model of the sub-network at (`width`, `resolution`): its input is
    [batch, resolution, resolution, 3], its weights those of `fixed_network(model, width)`."""
    fixed = fixed_network(model, width)
    inputs = keras.Input((resolution, resolution, 3), name="images")
    return keras.Model(inputs, fixed(inputs), name=f"{model.name}_w{width:g}_r{resolution}")


def active_macs(model, width, resolution):
    """Multiply-accumulates (the paper's FLOPs) of `model` at `width` on resolution^2 images."""
    from bl_keras.profiling import count_macs

    widths.check_width(width)

    def forward(images, training=False):
        return model(images, width=float(width), training=training)

    return count_macs(forward, (resolution, resolution, 3))
