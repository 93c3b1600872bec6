"""The ResNet family, plain and Big-Little: ResNet, ResNeXt, SE-ResNeXt and their bL versions.

One builder serves all sixteen models of the paper's Tables 1-2 and the ablations of Tables 6-8;
they differ only by configuration (`bl_keras.models.specs`, `merge_plan`). The constructor
signature follows keras.applications.

Layer names are stable (weights and converters map by them):
    stem, layer1, layer2, layer3 (bL-modules or plain stages), layer4, avg_pool, predictions.
With more than four merges (Table 8) a split stage's modules are layer{i}_1, layer{i}_2, ...

The ablations (paper Appendix A.3, A.4), as options of the same builder:
    lowres=True      ResNet-50/101-lowres (Table 6): the bL-Net's Big path alone. The stem is the
                     bL stem without its little branch, and every stage strides (each runs at
                     half the baseline's resolution, as the big branches do); ResNet depths.
    merge="concat"   Table 7, concatenation (see `bl_keras.layers.module`), stem included.
    branches=3       Table 7, K=3: the stem is the 7x7 conv alone, so the first module sees the
                     112x112 map and merges little (112), middle (56) and big (28) branches; its
                     fusion block strides by 4 (with a strided 1x1 projection: the released
                     3x3/2 average-pool shortcut cannot stride 4) to reach the usual 28x28.
    num_merges=m     Table 8 (see `bl_keras.models.merge_plan`).
"""

from bl_keras.layers import BigLittleModule, BigLittleStem, ConvBN, ResidualStage, ResNetStem
from bl_keras.layers.norm import norm_config
from bl_keras.models import merge_plan, specs
from bl_keras.models.applications import check_arguments, finish_model, image_input


def resnet_family(
    family="resnet",
    depth=50,
    big_little=True,
    alpha=2,
    beta=4,
    upsample="nearest",
    merge="add",
    branches=2,
    num_merges=merge_plan.DEFAULT_MERGES,
    lowres=False,
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
    features=False,
    name=None,
):
    """Build a (bL-)ResNet / ResNeXt / SE-ResNeXt as a functional Keras model.

    Args:
        family: block options, a key of `specs.FAMILIES` ("resnet", "resnext_32x4d", ...).
        depth: 50, 101 or 152 (selects the paper's stage depths); ignored if `stage_depths`.
        big_little: build the bL-Net (bL stem and bL-modules in stages 1-3) or the plain baseline.
        alpha, beta: width and depth ratios of the big to the little branch (bL only).
        upsample: "nearest" (released code, needed for converted weights) or "bilinear" (paper).
        merge: "add" (paper) or "concat" (Table 7 ablation).
        branches: 2 (paper) or 3 (Table 7, K=3).
        num_merges: merges of the branches, 4 as released (Table 8 ablation).
        lowres: build the low-resolution baseline of Table 6 (with big_little=False).
        include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation:
            as in keras.applications. `weights` is None or the path of a weights file.
        stage_depths, stage_filters, stem_filters: override the stage depths and widths (for
            small models such as the demo's).
        zero_init_residual: initialise the last BN scale of every residual branch to 0.
        norm: BatchNorm options (momentum 0.9, epsilon 1e-5 by default, as released).
        features: return the detection backbone instead: a model from images to the feature
            maps {"C2", "C3", "C4", "C5"} at strides 4-32 (`bl_keras.models.features`).
        name: model name.
    """
    if family not in specs.FAMILIES:
        raise ValueError(f"Unknown family {family!r}; valid: {sorted(specs.FAMILIES)}")
    if lowres and big_little:
        raise ValueError("lowres builds the plain low-resolution baseline: use big_little=False")
    depth_table = specs.BIG_LITTLE_DEPTHS if big_little else specs.PLAIN_DEPTHS
    if stage_depths is None:
        if depth not in depth_table:
            raise ValueError(f"depth must be one of {sorted(depth_table)}, got {depth!r}")
        stage_depths = depth_table[depth]
    if len(stage_depths) != 4 or len(stage_filters) != 4:
        raise ValueError("stage_depths and stage_filters need 4 entries each")
    check_arguments(include_top, weights, pooling, classes, features)
    if big_little:
        _check_branch_options(merge, int(branches), int(num_merges))

    norm = norm_config(norm)
    block_config = dict(specs.FAMILIES[family], zero_gamma=zero_init_residual)
    inputs = image_input(input_tensor, input_shape)

    if big_little:
        block_config["shortcut"] = "avgpool"
        x = _big_little_stages(inputs, stage_depths, stage_filters, stem_filters, alpha, beta,
                               upsample, merge, int(branches), int(num_merges), block_config,
                               norm)
    else:
        # The low-resolution baseline is the bL-Net's big path: its stride-2 blocks shortcut
        # through the released average pool, as the big branches do.
        block_config["shortcut"] = "avgpool" if lowres else "conv"
        if lowres:
            x = BigLittleStem(stem_filters, alpha=1, branches=1, norm=norm, name="stem")(inputs)
        else:
            x = ResNetStem(stem_filters, norm=norm, name="stem")(inputs)
        stage_strides = specs.LOWRES_STRIDES if lowres else specs.PLAIN_STRIDES
        for i in range(4):
            x = ResidualStage(
                stage_filters[i], stage_depths[i], strides=stage_strides[i],
                block_config=block_config, norm=norm, name=f"layer{i + 1}",
            )(x)

    return finish_model(inputs, input_tensor, x, include_top=include_top, pooling=pooling,
                        classes=classes, classifier_activation=classifier_activation,
                        weights=weights, name=name or family, features=features)


def _check_branch_options(merge, branches, num_merges):
    if merge not in ("add", "concat"):
        raise ValueError(f"merge must be 'add' or 'concat', got {merge!r}")
    if branches not in (2, 3):
        raise ValueError(f"branches must be 2 or 3, got {branches}")
    if branches == 3 and (merge != "add" or num_merges != merge_plan.DEFAULT_MERGES):
        raise ValueError("branches=3 is defined with merge='add' and the released 4 merges "
                         "(paper Table 7)")
    if num_merges < merge_plan.DEFAULT_MERGES and merge != "add":
        raise ValueError("fewer than 4 merges is defined with merge='add' (paper Table 8)")


def _big_little_stages(inputs, stage_depths, stage_filters, stem_filters, alpha, beta, upsample,
                       merge, branches, num_merges, block_config, norm):
    """Stem, the bL-modules of stages 1-3 (per `merge_plan`) and the plain stage 4."""
    plan = merge_plan.module_plan(stage_depths[:3], specs.BIG_LITTLE_STRIDES[:3], num_merges)
    if branches == 3:
        x = ConvBN(stem_filters, 7, 2, norm=norm, name="stem")(inputs)
    else:
        stem_merge = merge if merge_plan.stem_merges(num_merges) else None
        x = BigLittleStem(stem_filters, alpha=alpha, merge=stem_merge, norm=norm,
                          name="stem")(inputs)
    handoff = {}  # strides the branches carry on from a module that did not merge
    for k, spec in enumerate(plan):
        options = dict(handoff)
        strides = spec.strides
        if branches == 3 and k == 0:
            # The stem no longer halves the resolution: the first fusion does it as well.
            strides *= 2
            options["fusion_config"] = {"shortcut": "conv"}
        x = BigLittleModule(
            stage_filters[spec.stage], spec.num_blocks, alpha=alpha, beta=beta, strides=strides,
            block_config=block_config, upsample=upsample,
            merge=merge if spec.merges else None, branches=branches, norm=norm,
            name=spec.name, **options,
        )(x)
        handoff = {} if spec.merges else dict(big_strides=spec.strides,
                                              little_strides=spec.strides)
    return ResidualStage(
        stage_filters[3], stage_depths[3], strides=specs.BIG_LITTLE_STRIDES[3],
        block_config=block_config, norm=norm, name="layer4",
    )(x)
