"""The ablations of Tables 6-8 as options of the bL-ResNet builder: structure and serialization."""

import keras
import numpy as np
import pytest

from bl_keras import layers, models
from bl_keras.models import merge_plan

def _numpy(x):
    return keras.ops.convert_to_numpy(x)


SMALL = dict(stage_filters=(64, 128, 256, 512), stem_filters=16, classes=5)


def _plan(depths, m):
    return [(s.name, s.num_blocks, s.strides, s.merges)
            for s in merge_plan.module_plan(depths, (2, 2, 1), m)]


def test_merge_plan_of_the_paper_configurations():
    assert _plan((3, 4, 6), 4) == [("layer1", 3, 2, True), ("layer2", 4, 2, True),
                                   ("layer3", 6, 1, True)]
    # Fewer merges leave out the earliest: m=2 merges after stages 2 and 3, m=1 after 3 only.
    assert [s[3] for s in _plan((3, 4, 6), 2)] == [False, True, True]
    assert [s[3] for s in _plan((3, 4, 6), 1)] == [False, False, True]
    assert merge_plan.stem_merges(4) and not merge_plan.stem_merges(3)
    # bL-ResNet-101 m=7: stage 3 splits twice, then stage 2 once; the stride is on the last.
    assert _plan((4, 8, 18), 7) == [
        ("layer1", 4, 2, True), ("layer2_1", 4, 1, True), ("layer2_2", 4, 2, True),
        ("layer3_1", 6, 1, True), ("layer3_2", 6, 1, True), ("layer3_3", 6, 1, True)]
    assert [s[1] for s in _plan((3, 4, 7), 5)] == [3, 4, 4, 3]
    with pytest.raises(ValueError, match="num_merges"):
        merge_plan.module_plan((3, 4, 6), (2, 2, 1), 0)
    with pytest.raises(ValueError, match="cannot be split"):
        merge_plan.module_plan((3, 4, 6), (2, 2, 1), 9)


def test_concat_module_splits_the_width_between_branches():
    module = layers.BigLittleModule(256, 3, alpha=2, strides=2, merge="concat")
    out = module(np.zeros((1, 16, 16, 64), "float32"))
    assert tuple(out.shape) == (1, 8, 8, 256)
    assert module.big.filters == 128 and module.big.blocks[-1].last_relu
    assert module.little.expand is None and module.little.compute_output_shape(
        (1, 16, 16, 64)) == (1, 16, 16, 128)
    assert isinstance(module.merge_layer, layers.MergeStack)


def test_three_branch_module_scales():
    module = layers.BigLittleModule(64, 4, alpha=2, beta=4, strides=2, branches=3)
    _, merged = module(keras.Input((32, 32, 16)), return_merged=True)
    assert tuple(merged.shape) == (None, 32, 32, 64)
    assert [b.strides for b in module.big.blocks] == [2, 2, 1]  # a quarter of the resolution
    assert module.middle.strides == 2 and module.little.strides == 1
    assert module.middle.expand is None and module.middle_expand.filters == 64


def test_unmerged_modules_hand_both_branches_on():
    model = models.bl_resnet50(num_merges=1, **SMALL)
    stem, layer1, layer3 = (model.get_layer(n) for n in ("stem", "layer1", "layer3"))
    assert stem.merge is None and stem.fuse is None
    assert layer1.merge is None and layer1.fusion is None and len(layer1.big.blocks) == 3
    assert model.get_layer("layer2").big_strides == (2,)
    assert model.get_layer("layer2").little_strides == 2
    assert layer3.merge == "add"
    shape = stem.compute_output_shape((1, 224, 224, 3))
    assert shape == [(1, 56, 56, 16), (1, 56, 56, 8)]
    for name in ("layer1", "layer2", "layer3"):
        shape = model.get_layer(name).compute_output_shape(shape)
    assert shape == (1, 14, 14, 256)


def test_lowres_is_the_big_path_at_half_resolution():
    model = models.resnet50_lowres(include_top=False)
    assert model.get_layer("stem").branches == 1
    assert [model.get_layer(f"layer{i}").strides for i in range(1, 5)] == [2, 2, 2, 2]
    assert model.output_shape == (None, None, None, 2048)
    assert tuple(model(np.zeros((1, 224, 224, 3), "float32")).shape) == (1, 4, 4, 2048)


def test_bad_ablation_options():
    with pytest.raises(ValueError, match="branches=3"):
        models.bl_resnet50(branches=3, merge="concat")
    with pytest.raises(ValueError, match="4 merges"):
        models.bl_resnet50(num_merges=2, merge="concat")
    with pytest.raises(TypeError, match="num_merges"):
        models.resnet50_lowres(num_merges=2)


@pytest.mark.parametrize("options", [dict(merge="concat"), dict(branches=3),
                                     dict(num_merges=2, upsample="bilinear")],
                         ids=["concat", "K3", "m2"])
def test_ablation_models_save_and_load_keras_file_safe_mode(options, tmp_path):
    model = models.bl_resnet50(**options, **SMALL)
    rng = np.random.default_rng(2)
    for w in model.weights:
        if "gamma" in w.path or "moving" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
    x = np.random.default_rng(1).random((2, 72, 88, 3), dtype="float32")
    expected = _numpy(model(x, training=False))
    path = tmp_path / "ablation.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.get_layer("layer1").get_config() == model.get_layer("layer1").get_config()
    np.testing.assert_array_equal(_numpy(loaded(x, training=False)), expected)
