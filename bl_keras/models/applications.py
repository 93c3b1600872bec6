"""The keras.applications constructor contract every image family shares: argument checks, the
image input, the classifier head (or pooling), weights, and the detection-features option.

Head layer names are stable: avg_pool / max_pool, predictions.
"""

import os

import keras

from bl_keras.layers import width as widths

register = keras.saving.register_keras_serializable(package="bl_keras")


@register
class Classifier(keras.layers.Dense):
    """The classifier `Dense`, width-aware: under a width below 1 (`bl_keras.layers.width`) it
    reads as many features as it receives, the first rows of its kernel (its outputs, the
    classes, are never slimmed). Otherwise it is exactly `keras.layers.Dense`."""

    def build(self, input_shape):
        super().build(input_shape)
        # The feature count varies with the width: check the rank only.
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    def call(self, inputs, training=None):
        if widths.is_full(widths.current_width()):
            return super().call(inputs, training=training)
        features = widths.channels_of(inputs)
        kernel = keras.ops.convert_to_tensor(self.kernel)[:features]
        x = keras.ops.matmul(inputs, kernel)
        if self.use_bias:
            x = x + keras.ops.convert_to_tensor(self.bias)
        return x if self.activation is None else self.activation(x)


def image_input(input_tensor, input_shape):
    if input_shape is None:
        input_shape = (None, None, 3)
    if input_tensor is None:
        return keras.Input(shape=input_shape, name="image")
    if not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape, name="image")
    return input_tensor


def head_dtype():
    # Softmax/logits in float32 under mixed precision, for a numerically stable loss.
    policy = keras.config.dtype_policy()
    return "float32" if policy.compute_dtype in ("float16", "bfloat16") else None


def check_weights_file(weights):
    """`weights` is None or an existing Keras weights file; say how to get released weights."""
    if weights is None:
        return
    if weights == "imagenet":
        raise ValueError(
            "weights='imagenet': bl_keras downloads nothing. The authors released PyTorch "
            "checkpoints of the bL models (IBM/BigLittleNet); convert one with `python -m "
            "bl_keras.convert --arch NAME --checkpoint FILE.pth.tar --output NAME.keras` (or "
            "`bl_keras.convert.from_checkpoint(NAME, FILE)`) and pass weights='NAME.keras'.")
    if weights.endswith((".pth", ".pth.tar", ".pt", ".tar")):
        raise ValueError(f"weights={weights!r} is a PyTorch checkpoint: convert it first with "
                         "`python -m bl_keras.convert --arch NAME --checkpoint "
                         f"{weights} --output NAME.keras`, then pass the .keras file")
    if not weights.endswith((".keras", ".weights.h5")):
        raise ValueError(f"weights={weights!r}: expected a .keras or .weights.h5 file")
    if not os.path.exists(weights):
        raise FileNotFoundError(f"weights file {weights!r} does not exist")


def check_arguments(include_top, weights, pooling, classes, features=False):
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if weights is not None and not isinstance(weights, str):
        raise ValueError("weights must be None or the path of a weights file")
    check_weights_file(weights)
    if include_top and not classes:
        raise ValueError("include_top=True needs classes >= 1")
    if features and (include_top or pooling):
        raise ValueError("features=True returns feature maps: use include_top=False, pooling=None")


def finish_model(inputs, input_tensor, x, *, include_top, pooling, classes,
                 classifier_activation, weights, name, features=False):
    """Add the head (or pooling), build the model, load `weights`, and with `features=True`
    return the C2-C5 feature model instead (`bl_keras.models.features`)."""
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = Classifier(
            classes,
            activation=classifier_activation,
            kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3, "fan_in", "uniform"),
            name="predictions",
            dtype=head_dtype(),
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)

    model_inputs = inputs if input_tensor is None else keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(model_inputs, x, name=name)
    if weights is not None:
        model.load_weights(weights)
    if features:
        from bl_keras.models.feature_maps import feature_model

        return feature_model(model)
    return model
