"""The per-image RetinaNet loss equals KerasHub's own for one image, and averages per image."""

import numpy as np
import pytest

from bl_keras.detection import PyramidBackbone
from bl_keras.detection.loss import focal_loss, per_image_loss

keras_hub = pytest.importorskip("keras_hub")

SMALL_BL = dict(alpha=2, beta=2, stage_depths=(2, 2, 2, 2), stage_filters=(32, 64, 96, 128),
                stem_filters=16)


@pytest.fixture(scope="module")
def detector():
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=PyramidBackbone("bl_resnet50", SMALL_BL), min_level=3, max_level=7,
        use_p5=False)
    model = keras_hub.models.RetinaNetObjectDetector(backbone=backbone, num_classes=3,
                                                     bounding_box_format="yxyx")
    model.compile(classification_loss=focal_loss(reduction="sum"))  # for its compute_loss
    return model


def batch():
    images = np.random.default_rng(0).normal(size=(2, 96, 96, 3)).astype("float32")
    boxes = np.full((2, 4, 4), -1.0, "float32")
    labels = np.full((2, 4), -1.0, "float32")
    boxes[0, :2] = [[10, 10, 50, 40], [40, 50, 90, 90]]
    labels[0, :2] = [0, 2]
    boxes[1, :3] = [[0, 0, 30, 30], [30, 30, 60, 80], [60, 10, 95, 40]]
    labels[1, :3] = [1, -2, 2]  # the second object ignored (VOC difficult)
    return images, {"boxes": boxes, "labels": labels}


def test_one_image_equals_keras_hub(detector):
    images, targets = batch()
    for i in range(2):
        x = images[i:i + 1]
        y = {key: value[i:i + 1] for key, value in targets.items()}
        outputs = detector(x, training=False)
        ours = per_image_loss(detector, x, y, outputs)
        theirs = detector.compute_loss(x=x, y=y, y_pred=outputs, sample_weight=None)
        assert ours.shape == (1,)
        np.testing.assert_allclose(float(ours[0]), float(theirs), rtol=1e-5)


def test_batch_is_each_image_alone(detector):
    images, targets = batch()
    outputs = detector(images, training=False)
    together = np.asarray(per_image_loss(detector, images, targets, outputs))
    for i in range(2):
        alone = per_image_loss(detector, images[i:i + 1],
                               {k: v[i:i + 1] for k, v in targets.items()},
                               detector(images[i:i + 1], training=False))
        np.testing.assert_allclose(together[i], float(alone[0]), rtol=1e-5)
    assert np.all(together > 0)
