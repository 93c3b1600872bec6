"""tfds VOC and COCO as KerasHub detection batches, under tfds.testing.mock_data."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from bl_keras.detection.data import letterbox, tfds_detection


def test_letterbox_keeps_the_aspect_ratio_and_scales_the_boxes():
    image = tf.ones([100, 200, 3])
    boxes = tf.constant([[0.0, 0.0, 1.0, 1.0], [0.5, 0.25, 0.75, 0.5]])
    resized, pixels = letterbox(image, boxes, (64, 64))
    assert resized.shape == (64, 64, 3)
    np.testing.assert_allclose(pixels, [[0, 0, 32, 64], [16, 16, 24, 32]])
    assert float(tf.reduce_min(resized[:32])) == 1.0 and float(tf.reduce_max(resized[32:])) == 0


@pytest.mark.parametrize("name,classes,ignore", [("voc/2007", 20, "is_difficult"),
                                                 ("coco/2017", 80, "is_crowd")])
def test_tfds_detection_under_mock_data(tmp_path, name, classes, ignore):
    with tfds.testing.mock_data(num_examples=6):
        data = tfds_detection(f"{name}:train", str(tmp_path), image_shape=(64, 96),
                              batch_size=4, training=True, max_boxes=30)
        images, targets = next(iter(data.dataset))  # (training: repeated)
        evaluation = tfds_detection(f"{name}:validation", str(tmp_path), image_shape=(64, 96),
                                    batch_size=4, training=False, max_boxes=30)
        sizes = [int(x.shape[0]) for x, _ in evaluation.dataset]
    assert (data.num_examples, data.num_classes, len(data.class_names)) == (6, classes, classes)
    assert images.shape == (4, 64, 96, 3) and images.dtype == tf.float32
    assert targets["boxes"].shape == (4, 30, 4) and targets["labels"].shape == (4, 30)
    labels = targets["labels"].numpy()
    assert np.all((labels >= -2) & (labels < classes))
    # "classes" keeps the class of the ignored objects (-2 in "labels") for the evaluation
    kept = targets["classes"].numpy()
    assert np.array_equal(kept[labels >= 0], labels[labels >= 0])
    assert np.all((kept[labels == -2] >= 0) & (kept[labels == -2] < classes))
    assert np.all(kept[labels == -1] == -1)
    boxes = targets["boxes"].numpy()[labels != -1]  # (mock boxes are random, not ordered)
    assert len(boxes) and np.all(boxes >= 0) and np.all(boxes[:, 2] <= 64) and np.all(boxes[:, 3] <= 96)
    assert sizes == [4, 2]


def test_unknown_or_missing_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown detection dataset 'kitti'"):
        tfds_detection("kitti:train", str(tmp_path), image_shape=(64, 64), batch_size=2,
                       training=False)
    with pytest.raises(FileNotFoundError, match="tfds voc/2007 is not prepared under"):
        tfds_detection("voc/2007:train", str(tmp_path), image_shape=(64, 64), batch_size=2,
                       training=False)
    with pytest.raises(ValueError, match="expected name:split"):
        tfds_detection("voc/2007", str(tmp_path), image_shape=(64, 64), batch_size=2,
                       training=False)


def test_voc07_plus_12_is_one_set(tmp_path):
    with tfds.testing.mock_data(num_examples=5):
        data = tfds_detection(["voc/2007:train", "voc/2012:train"], str(tmp_path),
                              image_shape=(32, 32), batch_size=5, training=False)
        batches = [images.shape[0] for images, _ in data.dataset]
    assert data.num_examples == 10 and batches == [5, 5] and data.num_classes == 20


def test_split_sizes_of_a_sum_come_from_the_recorded_sizes():
    from types import SimpleNamespace

    from bl_keras.data.sources import tfds_split_size

    info = SimpleNamespace(splits={"train": SimpleNamespace(num_examples=2501),
                                   "validation": SimpleNamespace(num_examples=2510)})
    builder = SimpleNamespace(info=info)
    unread = lambda: pytest.fail("the records were read to count them")  # noqa: E731
    assert tfds_split_size(builder, "train+validation", unread) == 5011
    assert tfds_split_size(builder, "train[:2]", lambda: tf.data.Dataset.range(2)) == 2
