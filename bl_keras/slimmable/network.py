"""`SlimmableNetwork`: a classifier executable at any width, and the fixed network of one width.

    model = bl_keras.slimmable.get("mobilenet_v2", classes=1000)
    logits = model(images, width=0.6)          # any width in (0, 1], any input size
    plain = fixed_network(model, 0.6)          # a network with just the 0.6x weights

The network is an ordinary functional model of width-aware layers (`bl_keras.layers`: `ConvBN`,
the blocks, branches, merges, stems and the classifier); the wrapper runs it inside
`running_width(width)`. The sub-network of a width as a plain network (`narrowed`) is the same
configuration rebuilt with the channel counts a run at that width records (`bl_keras.layers.
width.recording` / `building`): the same topology, every layer as narrow as it runs there.
`base_width` (a multiplier, or a list applied in turn: `fixed_network` appends one) builds the
network narrowed that way.
"""

import keras
import numpy as np

from bl_keras.layers import width as widths
from bl_keras.models import specs

register = keras.saving.register_keras_serializable(package="bl_keras")

# Channel counts do not depend on the input size: a small probe records them.
PROBE_SIZE = 64


def _mobilenet(version):
    def build(classes, norm, classifier_activation, **options):
        from bl_keras.models import mobilenet

        builder = mobilenet.mobilenet_v1 if version == 1 else mobilenet.mobilenet_v2
        return builder(classes=classes, norm=norm, classifier_activation=classifier_activation,
                       **options)
    return build


def _registry(name):
    def build(classes, norm, classifier_activation, **options):
        from bl_keras import models

        return models.get(name, classes=classes, norm=norm,
                          classifier_activation=classifier_activation, **options)
    return build


# The networks MutualNet trains (the CIFAR ResNets for 28-32 pixel images); `get` also takes
# any registry ResNet / ResNeXt name.
ARCHITECTURES = {"mobilenet_v1": _mobilenet(1), "mobilenet_v2": _mobilenet(2),
                 "resnet50": _registry("resnet50"), "bl_resnet50": _registry("bl_resnet50"),
                 **{name: _registry(name) for name in specs.CIFAR_MODELS}}


def architecture_builder(name):
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    if name in specs.IMAGE_MODELS:  # the ResNet / ResNeXt / SE family of Tables 1-2
        return _registry(name)
    raise ValueError(f"Unknown slimmable architecture {name!r}; valid: {sorted(ARCHITECTURES)} "
                     "or a ResNet / ResNeXt model of the registry (paper Tables 1-2)")


def width_chain(base_width):
    chain = tuple(float(w) for w in (base_width if isinstance(base_width, (list, tuple))
                                     else (base_width,)))
    for w in chain:
        widths.check_width(w)
    return chain


def narrowed(model, width, name=None):
    """The functional `model` rebuilt as its sub-network at the static `width` (fresh weights):
    every layer with the channel counts it runs with at that width, the same topology."""
    width = widths.check_width(width)
    plan = {}
    shape = tuple(n or PROBE_SIZE for n in model.input_shape[1:])
    with widths.recording(plan), widths.running_width(width):
        model(np.zeros((1, *shape), "float32"), training=False)
    config = model.get_config()
    config["name"] = name or model.name
    for layer in config["layers"]:
        # Built from the shapes they are called with, not the nominal ones stored.
        layer.pop("build_config", None)
    with widths.building(plan):
        return model.__class__.from_config(config)


def copy_leading(source, target):
    """Assign every weight of `target` the leading slice of `source`'s weight at its position
    (same structure, `target` narrower)."""
    if len(source.weights) != len(target.weights):
        raise ValueError("the narrow network and the model differ in structure")
    for s, t in zip(source.weights, target.weights):
        if s.path.split("/", 1)[-1] != t.path.split("/", 1)[-1]:
            raise ValueError(f"weight order differs: {s.path} vs {t.path}")
        value = keras.ops.convert_to_numpy(s)
        t.assign(value[tuple(slice(0, n) for n in t.shape)])


@register
class SlimmableNetwork(keras.Model):
    """A slimmable classifier; `call(images, width=1.0, training=None)` returns class scores.

    Args:
        architecture: a key of `ARCHITECTURES` ("mobilenet_v1", "mobilenet_v2", "resnet50",
            "bl_resnet50", the CIFAR ResNets) or a registry ResNet / ResNeXt name (e.g. "bl_resnext50_32x4d").
        classes: outputs of the classifier (never slimmed).
        base_width: width multiplier(s) of the network as built (see the module doc).
        norm: BatchNorm options (see `bl_keras.layers.norm`).
        classifier_activation: "softmax" or None (logits).
        options: builder options (e.g. stage_depths, alpha, beta, merge of the ResNets).
    """

    def __init__(self, architecture="mobilenet_v2", classes=1000, base_width=1.0, norm=None,
                 classifier_activation="softmax", options=None, **kwargs):
        super().__init__(**kwargs)
        # Keras would cast a float tensor width to the compute dtype (bfloat16 rounds 0.3 to
        # 0.30078, which changes channel counts): `__call__` converts the images only.
        self._convert_input_args = False
        build = architecture_builder(architecture)
        if classifier_activation not in ("softmax", None):
            raise ValueError("classifier_activation must be 'softmax' or None, got "
                             f"{classifier_activation!r}")
        self.architecture = architecture
        self.classes = int(classes)
        self.base_width = width_chain(base_width)
        self.norm = norm
        self.classifier_activation = classifier_activation
        self.options = dict(options or {})
        network = build(self.classes, norm, classifier_activation, **self.options)
        for multiplier in self.base_width:
            if multiplier != 1.0:
                network = narrowed(network, multiplier)
        self.network = network
        self.built = True

    @property
    def classifier(self):
        """The classifier layer ("predictions")."""
        return self.network.get_layer("predictions")

    def __call__(self, images, *args, **kwargs):
        if not keras.backend.is_keras_tensor(images):
            images = keras.ops.cast(images, self.compute_dtype)
        return super().__call__(images, *args, **kwargs)

    def call(self, inputs, width=1.0, training=None):
        with widths.running_width(width):
            return self.network(inputs, training=training)

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


def _narrower(model, width, name=None):
    widths.check_width(width)
    return SlimmableNetwork.from_config(dict(
        model.get_config(), base_width=list(model.base_width) + [float(width)],
        name=name or f"{model.name}_w{width:g}"))


def fixed_network(model, width, name=None):
    """A `SlimmableNetwork` holding only the weights of `model`'s sub-network at `width`.

    Called at width 1.0 it computes what `model(x, width=width)` computes; it is smaller to
    store and serve, and its BatchNorm statistics are the ones `model` holds now (calibrate
    first: `bl_keras.slimmable.calibration`).
    """
    fixed = _narrower(model, width, name)
    copy_leading(model, fixed)
    return fixed


def active_params(model, width):
    """Trainable parameters of `model`'s sub-network at `width` (a Python number)."""
    from bl_keras.profiling import count_params

    width = widths.check_width(width)
    return count_params(model if width == 1.0 else _narrower(model, width))


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
