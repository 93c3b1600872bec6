"""Detection features (paper Appendix A.6): C2-C5 of every image family, and an FPN on top."""

import keras
import numpy as np
import pytest

from bl_keras import layers, models


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _shapes(tensors):
    return {k: tuple(v.shape) for k, v in tensors.items()}


def fpn(features, channels=256):
    """A small FPN (Lin et al., 2017): lateral 1x1 convs, top-down nearest upsampling + add, 3x3
    output convs, and P6 by subsampling P5. The top-down path resizes to the lateral's size
    (MergeAdd), since odd sizes (75 at stride 8 for 600) do not double exactly."""
    lateral = {k: keras.layers.Conv2D(channels, 1, name=f"lateral{k[1]}")(v)
               for k, v in features.items()}
    top, merged = lateral["C5"], {"C5": lateral["C5"]}
    for level in ("C4", "C3", "C2"):
        top = layers.MergeAdd(activation=None, name=f"topdown{level[1]}")([top, lateral[level]])
        merged[level] = top
    outputs = {f"P{k[1]}": keras.layers.Conv2D(channels, 3, padding="same", name=f"P{k[1]}")(v)
               for k, v in merged.items()}
    outputs["P6"] = keras.layers.MaxPooling2D(1, 2, name="P6")(outputs["P5"])
    return outputs


def test_fpn_on_bl_resnet101_at_600x1024():
    backbone = models.features("bl_resnet101", input_shape=(600, 1024, 3))
    image = keras.Input((600, 1024, 3))
    c = backbone(image)
    expected_c = {"C2": (None, 150, 256, 256), "C3": (None, 75, 128, 512),
                  "C4": (None, 38, 64, 1024), "C5": (None, 19, 32, 2048)}
    assert _shapes(c) == expected_c
    p = fpn(c)
    expected_p = {"P2": (150, 256), "P3": (75, 128), "P4": (38, 64), "P5": (19, 32),
                  "P6": (10, 16)}
    assert _shapes(p) == {k: (None, *hw, 256) for k, hw in expected_p.items()}
    detector = keras.Model(image, {**c, **p})
    out = detector(np.zeros((1, 600, 1024, 3), "float32"), training=False)
    assert {k: tuple(v.shape[1:3]) for k, v in out.items()} == {
        **{k: s[1:3] for k, s in expected_c.items()}, **expected_p}


@pytest.mark.parametrize("name,channels", [
    ("resnet50", (256, 512, 1024, 2048)),
    ("resnet50_lowres", (64, 256, 512, 1024)),
    ("shufflenet_v2_x0_5", (24, 48, 96, 1024)),
    ("bl_shufflenet_v2_x1_0", (24, 116, 232, 1024)),
])
def test_features_of_each_family_at_strides_4_to_32(name, channels):
    backbone = models.features(name)
    out = backbone(np.zeros((1, 128, 160, 3), "float32"))
    assert list(out) == ["C2", "C3", "C4", "C5"]
    assert [tuple(v.shape) for v in out.values()] == [
        (1, 128 // s, 160 // s, c) for s, c in zip((4, 8, 16, 32), channels)]


def test_features_of_a_classifier_keep_its_weights_and_taps_merged_maps(tmp_path):
    classifier = models.bl_resnet50(classes=10, stage_filters=(64, 128, 256, 512),
                                    stem_filters=16)
    for i, w in enumerate(classifier.weights):
        if "gamma" in w.path or "moving" in w.path:
            w.assign(np.random.default_rng(i).uniform(0.5, 1.5, w.shape).astype("float32"))
    backbone = models.features(classifier)
    x = np.random.default_rng(0).random((1, 96, 96, 3), dtype="float32")
    maps = {k: _numpy(v) for k, v in backbone(x, training=False).items()}
    # C5 is layer4's output: the classifier's own head input.
    trunk = keras.Model(classifier.inputs, classifier.get_layer("layer4").output)
    np.testing.assert_array_equal(maps["C5"], _numpy(trunk(x, training=False)))
    # C2 is layer1's merged map (stride 4), C3 layer2's (stride 8): before their fusion blocks.
    assert maps["C2"].shape == (1, 24, 24, 64) and maps["C3"].shape == (1, 12, 12, 128)
    path = tmp_path / "backbone.keras"
    backbone.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    for level, value in loaded(x, training=False).items():
        np.testing.assert_array_equal(_numpy(value), maps[level])


def test_features_errors():
    with pytest.raises(ValueError, match="stride 4"):
        models.features("bl_resnet50", branches=3, stage_filters=(64, 128, 256, 512))
    with pytest.raises(ValueError, match="include_top=False"):
        models.resnet50(features=True)
