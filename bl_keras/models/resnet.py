"""The ResNet family, plain and Big-Little: ResNet, ResNeXt, SE-ResNeXt and their bL versions.

One builder serves all sixteen models of the paper's Tables 1-2; they differ only by configuration
(`bl_keras.models.specs`). The constructor signature follows keras.applications.

Layer names are stable (weights and converters map by them):
    stem, layer1, layer2, layer3 (bL-modules or plain stages), layer4, avg_pool, predictions.
"""

import keras

from bl_keras.layers import BigLittleModule, BigLittleStem, ResidualStage, ResNetStem
from bl_keras.layers.norm import norm_config
from bl_keras.models import specs


def _image_input(input_tensor, input_shape):
    if input_shape is None:
        input_shape = (None, None, 3)
    if input_tensor is None:
        return keras.Input(shape=input_shape, name="image")
    if not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape, name="image")
    return input_tensor


def _head_dtype():
    # Softmax/logits in float32 under mixed precision, for a numerically stable loss.
    policy = keras.config.dtype_policy()
    return "float32" if policy.compute_dtype in ("float16", "bfloat16") else None


def resnet_family(
    family="resnet",
    depth=50,
    big_little=True,
    alpha=2,
    beta=4,
    upsample="nearest",
    merge="add",
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    stage_depths=None,
    stage_filters=specs.STAGE_FILTERS,
    stem_filters=64,
    zero_init_residual=True,
    norm=None,
    name=None,
):
    """Build a (bL-)ResNet / ResNeXt / SE-ResNeXt as a functional Keras model.

    Args:
        family: block options, a key of `specs.FAMILIES` ("resnet", "resnext_32x4d", ...).
        depth: 50, 101 or 152 (selects the paper's stage depths); ignored if `stage_depths`.
        big_little: build the bL-Net (bL stem and bL-modules in stages 1-3) or the plain baseline.
        alpha, beta: width and depth ratios of the big to the little branch (bL only).
        upsample: "nearest" (released code, needed for converted weights) or "bilinear" (paper).
        merge: "add" (paper) or "concat" (ablation).
        include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation:
            as in keras.applications. `weights` is None or the path of a weights file.
        stage_depths, stage_filters, stem_filters: override the stage depths and widths (for
            small models such as the demo's).
        zero_init_residual: initialise the last BN scale of every residual branch to 0.
        norm: BatchNorm options (momentum 0.9, epsilon 1e-5 by default, as released).
        name: model name.
    """
    if family not in specs.FAMILIES:
        raise ValueError(f"Unknown family {family!r}; valid: {sorted(specs.FAMILIES)}")
    depth_table = specs.BIG_LITTLE_DEPTHS if big_little else specs.PLAIN_DEPTHS
    if stage_depths is None:
        if depth not in depth_table:
            raise ValueError(f"depth must be one of {sorted(depth_table)}, got {depth!r}")
        stage_depths = depth_table[depth]
    if len(stage_depths) != 4 or len(stage_filters) != 4:
        raise ValueError("stage_depths and stage_filters need 4 entries each")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    if weights is not None and not isinstance(weights, str):
        raise ValueError("weights must be None or the path of a weights file")
    if include_top and not classes:
        raise ValueError("include_top=True needs classes >= 1")

    norm = norm_config(norm)
    block_config = dict(specs.FAMILIES[family], zero_gamma=zero_init_residual)
    inputs = _image_input(input_tensor, input_shape)

    if big_little:
        block_config["shortcut"] = "avgpool"
        x = BigLittleStem(stem_filters, alpha=alpha, norm=norm, name="stem")(inputs)
        for i in range(3):
            x = BigLittleModule(
                stage_filters[i], stage_depths[i], alpha=alpha, beta=beta,
                strides=specs.BIG_LITTLE_STRIDES[i], block_config=block_config,
                upsample=upsample, merge=merge, norm=norm, name=f"layer{i + 1}",
            )(x)
        x = ResidualStage(
            stage_filters[3], stage_depths[3], strides=specs.BIG_LITTLE_STRIDES[3],
            block_config=block_config, norm=norm, name="layer4",
        )(x)
    else:
        block_config["shortcut"] = "conv"
        x = ResNetStem(stem_filters, norm=norm, name="stem")(inputs)
        for i in range(4):
            x = ResidualStage(
                stage_filters[i], stage_depths[i], strides=specs.PLAIN_STRIDES[i],
                block_config=block_config, norm=norm, name=f"layer{i + 1}",
            )(x)

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(
            classes,
            activation=classifier_activation,
            kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3, "fan_in", "uniform"),
            name="predictions",
            dtype=_head_dtype(),
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)

    model_inputs = inputs if input_tensor is None else keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(model_inputs, x, name=name or family)
    if weights is not None:
        model.load_weights(weights)
    return model
