"""mAP through pycocotools against hand-computed values."""

import numpy as np
import pytest

from bl_keras.detection.metrics import mean_average_precision

pytest.importorskip("pycocotools")

# Two images, yxyx pixels: two objects of class 0 and one of class 1.
TRUTH = [
    {"boxes": np.array([[10, 10, 30, 40], [50, 50, 90, 70]]), "classes": np.array([0, 1])},
    {"boxes": np.array([[0, 0, 20, 20]]), "classes": np.array([0])},
]


def predicted(boxes, classes, scores):
    return {"boxes": np.array(boxes, float), "classes": np.array(classes),
            "scores": np.array(scores)}


def test_perfect_predictions_score_one():
    predictions = [predicted(t["boxes"], t["classes"], [0.9] * len(t["classes"]))
                   for t in TRUTH]
    assert mean_average_precision(TRUTH, predictions, num_classes=2) == \
        {"map": 1.0, "map50": 1.0, "map75": 1.0}


def test_one_shifted_box():
    # The second class-0 object predicted 4 pixels too far right (20x20 box, x from 4 to 24):
    # IoU 16 * 20 / (400 + 400 - 320) = 2/3: a hit at IoU thresholds 0.5-0.65, a false
    # positive (and a miss) at 0.7-0.95. At a miss, class
    # 0's precision is 1 up to recall 0.5 and 0 after: 101-point AP = 51 / 101. Class 1 is exact.
    # Scores put the shifted box last so the exact class-0 box comes first.
    predictions = [predicted(TRUTH[0]["boxes"], [0, 1], [0.9, 0.9]),
                   predicted([[0, 4, 20, 24]], [0], [0.5])]
    result = mean_average_precision(TRUTH, predictions, num_classes=2)
    class0 = (4 * 1.0 + 6 * 51 / 101) / 10
    assert result["map"] == pytest.approx((class0 + 1.0) / 2, abs=1e-12)
    assert result["map50"] == 1.0
    assert result["map75"] == pytest.approx((51 / 101 + 1.0) / 2, abs=1e-12)


def test_ignored_objects_are_neither_hits_nor_misses():
    truth = [dict(TRUTH[0], ignore=np.array([False, True])), TRUTH[1]]
    # class 1's only object is ignored: no class-1 prediction is needed, class 0 is exact
    predictions = [predicted(TRUTH[0]["boxes"][:1], [0], [0.9]),
                   predicted(TRUTH[1]["boxes"], [0], [0.8])]
    assert mean_average_precision(truth, predictions, num_classes=2)["map"] == 1.0


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="2 ground-truth images but 1 predicted"):
        mean_average_precision(TRUTH, [predicted([], [], [])], num_classes=2)
    with pytest.raises(ValueError, match="class 1 outside"):
        mean_average_precision(TRUTH, [predicted([], [], [])] * 2, num_classes=1)
    with pytest.raises(ValueError, match="not in yxyx order"):
        mean_average_precision([{"boxes": np.array([[10, 10, 5, 20]]), "classes": [0]}],
                               [predicted([], [], [])], num_classes=1)
    empty = mean_average_precision(TRUTH, [predicted([], [], [])] * 2, num_classes=2)
    assert empty == {"map": 0.0, "map50": 0.0, "map75": 0.0}
