"""The zoo's image models as KerasHub feature-pyramid backbones: P2-P5 are `features()`' C2-C5
exactly, any input size, trained weights carried over, and a KerasHub RetinaNet on them that
round-trips through `.keras` in safe mode."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from bl_keras import models
from bl_keras.detection import PyramidBackbone
from tests.conftest import REPO

keras_hub = pytest.importorskip("keras_hub")

SMALL_BL = dict(alpha=2, beta=2, stage_depths=(2, 2, 2, 2), stage_filters=(32, 64, 96, 128),
                stem_filters=16)


def images(height=96, width=128, seed=0):
    return np.random.default_rng(seed).normal(size=(2, height, width, 3)).astype("float32")


@pytest.mark.parametrize("name,options", [
    ("bl_resnet50", dict(alpha=2, beta=4)),
    ("resnet50", {}),
    ("bl_resnext50_32x4d", dict(alpha=2, beta=4)),
    ("bl_shufflenet_v2_x1_0", {}),
    ("shufflenet_v2_x1_0", {}),
    ("resnet50_lowres", {}),
])
def test_pyramid_outputs_are_the_feature_maps(name, options):
    backbone = PyramidBackbone(name, options)
    x = images()
    pyramid = backbone(x, training=False)
    maps = models.features(name, input_shape=(None, None, 3), **options)
    maps.set_weights(backbone.features.get_weights())
    expected = maps(x, training=False)
    assert sorted(backbone.pyramid_outputs) == ["P2", "P3", "P4", "P5"]
    for level in (2, 3, 4, 5):
        got, want = np.asarray(pyramid[f"P{level}"]), np.asarray(expected[f"C{level}"])
        assert np.abs(got - want).max() == 0.0
    if not name.endswith("lowres"):  # the low-resolution baselines start at stride 8
        assert pyramid["P2"].shape[1:3] == (96 // 4, 128 // 4)
    assert pyramid["P5"].shape[1:3] == (3, 4)


def test_from_classifier_carries_the_trained_weights():
    classifier = models.get("bl_resnet50", classes=5, **SMALL_BL)
    backbone = PyramidBackbone.from_classifier(classifier, "bl_resnet50", **SMALL_BL)
    expected = models.features(classifier)(images(64, 64), training=False)
    got = backbone(images(64, 64), training=False)
    for level in (2, 3, 4, 5):
        np.testing.assert_array_equal(got[f"P{level}"], expected[f"C{level}"])
    with pytest.raises(ValueError, match="does not have the layers of bl_resnet50"):
        PyramidBackbone.from_classifier(classifier, "bl_resnet50", alpha=2, beta=4)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="model_options: include_top is set by PyramidBackbone"):
        PyramidBackbone("resnet50", {"include_top": True})
    with pytest.raises(ValueError, match="Unknown model 'resnet51'"):
        PyramidBackbone("resnet51")


def test_retinanet_on_a_bl_backbone_round_trips_in_safe_mode(tmp_path):
    encoder = PyramidBackbone("bl_resnet50", SMALL_BL)
    backbone = keras_hub.models.RetinaNetBackbone(image_encoder=encoder, min_level=3,
                                                  max_level=7, use_p5=False)
    detector = keras_hub.models.RetinaNetObjectDetector(backbone=backbone, num_classes=4,
                                                        bounding_box_format="yxyx")
    x = images(128, 96)
    outputs = detector(x, training=False)
    # 9 anchors per position on P3-P7 of a 128x96 image
    positions = sum((128 // 2 ** k + (128 % 2 ** k > 0)) * (96 // 2 ** k + (96 % 2 ** k > 0))
                    for k in range(3, 8))
    assert outputs["cls_logits"].shape == (2, 9 * positions, 4)
    path = tmp_path / "detector.keras"
    detector.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    inner = loaded.backbone.image_encoder
    assert isinstance(inner, PyramidBackbone) and inner.model_name == "bl_resnet50"
    assert inner.model_options == dict(SMALL_BL, stage_depths=[2, 2, 2, 2],
                                       stage_filters=[32, 64, 96, 128])
    reloaded = loaded(x, training=False)
    for key in ("cls_logits", "bbox_regression"):
        assert np.abs(np.asarray(reloaded[key]) - np.asarray(outputs[key])).max() == 0.0
    # ... and in a fresh process after `import bl_keras` alone
    np.save(tmp_path / "x.npy", x)
    code = (f"import bl_keras, keras, numpy as np; m = keras.saving.load_model({str(path)!r}, "
            f"safe_mode=True); print(float(np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}), "
            "training=False)['cls_logits']).sum()))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = float(np.asarray(outputs["cls_logits"]).sum())
    assert float(proc.stdout.strip().splitlines()[-1]) == pytest.approx(expected, rel=1e-6)
