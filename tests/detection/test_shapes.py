"""The generated detection set: deterministic scenes, tight boxes, KerasHub batches, flips that
move boxes with the pixels."""

import numpy as np

from bl_keras.detection.shapes import CLASSES, make_shapes, shapes_dataset


def test_scenes_are_deterministic_with_tight_non_overlapping_boxes():
    images, boxes, labels = make_shapes(40, "val", size=64, seed=3)
    again = make_shapes(40, "val", size=64, seed=3)
    np.testing.assert_array_equal(images, again[0])
    assert not np.array_equal(images, make_shapes(40, "train", size=64, seed=3)[0])
    counts = (labels >= 0).sum(axis=1)
    assert counts.min() >= 1 and counts.max() <= 3 and len(set(labels[labels >= 0])) == 4
    for image, scene_boxes, scene_labels in zip(images, boxes, labels):
        kept = scene_boxes[scene_labels >= 0].astype(int)
        for i, (y0, x0, y1, x1) in enumerate(kept):
            assert 0 <= y0 < y1 <= 64 and 0 <= x0 < x1 <= 64 and (y1 - y0) >= 5
            for other in kept[i + 1:]:
                assert not (y0 < other[2] and other[0] < y1 and x0 < other[3] and other[1] < x1)
    assert np.all(boxes[labels < 0] == -1)


def test_batches_and_flips():
    data = shapes_dataset(16, "train", image_size=64, batch_size=8, training=True, seed=1,
                          mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert (data.num_examples, data.num_classes, data.class_names) == (16, 4, list(CLASSES))
    originals = make_shapes(16, "train", size=64, seed=1)
    flipped_seen = 0
    for images, targets in data.dataset.take(2):  # one pass (training repeats)
        assert images.shape == (8, 64, 64, 3)
        for image, boxes, labels in zip(images.numpy(), targets["boxes"].numpy(),
                                        targets["labels"].numpy()):
            # find the original scene (shuffled) and check the boxes moved with the pixels
            pixels = np.round(image * 255).astype(np.uint8)
            index = next(i for i in range(16)
                         if np.array_equal(pixels, originals[0][i])
                         or np.array_equal(pixels, originals[0][i][:, ::-1]))
            flipped = not np.array_equal(pixels, originals[0][index])
            flipped_seen += flipped
            expected = originals[1][index].copy()
            if flipped:
                real = originals[2][index] >= 0
                expected[real, 1], expected[real, 3] = (64 - originals[1][index][real, 3],
                                                        64 - originals[1][index][real, 1])
            np.testing.assert_array_equal(boxes, expected)
            np.testing.assert_array_equal(labels, originals[2][index])
    assert 0 < flipped_seen < 16


def test_training_stream_resumes_where_it_stopped():
    def stream(skip):
        data = shapes_dataset(12, "train", image_size=32, batch_size=4, training=True, seed=3,
                              skip_examples=skip)
        return [(images.numpy(), targets["boxes"].numpy())
                for images, targets in data.dataset.take(4)]

    whole, resumed = stream(0), stream(8)  # 16 images: past the first pass, reshuffled
    for (images, boxes), (images_again, boxes_again) in zip(whole[2:], resumed):
        np.testing.assert_array_equal(images, images_again)
        np.testing.assert_array_equal(boxes, boxes_again)
