"""What a detection run ends with: its mAP beside a trivial detector's, and a picture.

The trivial detector knows the training set's statistics but not the image: on every image it
predicts, for each class, that class's mean training box, scored by the class's frequency. Its
mAP is what a model scores without localising anything (the chance level of detection).
"""

import dataclasses

import numpy as np

from bl_keras.detection.metrics import mean_average_precision
from bl_keras.detection.task import ground_truth

TRAINING_IMAGES_FOR_STATISTICS = 500


@dataclasses.dataclass
class Summary:
    model: dict
    trivial: dict
    images: int

    def text(self):
        def line(name, result):
            return (f"{name}: mAP@0.5 {result['map50']:.4f}, mAP@[.5:.95] {result['map']:.4f}, "
                    f"mAP@0.75 {result['map75']:.4f}")

        return "\n".join([f"Validation, {self.images} images:", line("  detector", self.model),
                          line("  trivial detector (each class's mean training box, scored "
                               "by its frequency)", self.trivial)])


def trivial_detector(training_truth, num_classes):
    """The trivial detector's prediction (the same for every image) from ground truth."""
    boxes = [[] for _ in range(num_classes)]
    for truth in training_truth:
        for box, label, ignore in zip(truth["boxes"], truth["classes"], truth["ignore"]):
            if not ignore:
                boxes[int(label)].append(box)
    total = max(sum(len(b) for b in boxes), 1)
    present = [c for c in range(num_classes) if boxes[c]]
    return {"boxes": np.array([np.mean(boxes[c], axis=0) for c in present]).reshape(-1, 4),
            "classes": np.array(present, np.int64),
            "scores": np.array([len(boxes[c]) / total for c in present])}


def _truth(dataset, limit=None):
    truth = []
    for _, targets in dataset:
        truth.extend(ground_truth(targets))
        if limit and len(truth) >= limit:
            break
    return truth[:limit]


def summary(model, task, config, model_result=None):
    """The model's validation mAP (`model_result` when already measured: {"map", "map50",
    "map75"}) and the trivial detector's."""
    if model_result is None:
        model_result = task.evaluate_model(model, config)
    train = task.train_dataset(None, config.batch_size, 0)
    statistics = _truth(train, TRAINING_IMAGES_FOR_STATISTICS)
    val = _truth(task.eval_dataset(None, config.eval_batch_size))
    if config.eval_steps:
        val = val[:config.eval_steps * config.eval_batch_size]
    guess = trivial_detector(statistics, task.num_classes)
    trivial = mean_average_precision(val, [guess] * len(val), task.num_classes)
    return Summary({k: model_result[k] for k in ("map", "map50", "map75")}, trivial, len(val))


def draw_detections(model, task, count, path, min_score=0.3):
    """`count` validation images with the detector's boxes above `min_score` (solid, labelled
    with class and score) and the ground truth (dashed), into image file `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bl_keras.detection.detector import predict_boxes
    from bl_keras.models.registry import IMAGENET_MEAN, IMAGENET_STD

    images, truth = [], []
    for batch, targets in task.eval_dataset(None, count):
        images, truth = batch, ground_truth(targets)
        break
    predicted = predict_boxes(model, images)
    columns = min(count, 4)
    rows = -(-len(truth) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    pixels = np.clip(np.asarray(images) * IMAGENET_STD + IMAGENET_MEAN, 0, 1)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, known, found in zip(axes.flat, pixels, truth, predicted):
        axis.imshow(image)
        for (y0, x0, y1, x1), label in zip(known["boxes"], known["classes"]):
            axis.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False,
                                         linestyle="--", linewidth=1, edgecolor="white"))
        for (y0, x0, y1, x1), label, score in zip(found["boxes"], found["classes"],
                                                  found["scores"]):
            if score < min_score:
                continue
            colour = colours(int(label) % 10)
            axis.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, linewidth=2,
                                         edgecolor=colour))
            axis.text(x0, y0, f"{task.class_names[int(label)]} {score:.2f}", fontsize=7,
                      color="black", backgroundcolor=colour, va="bottom")
    figure.suptitle("predicted (solid) and true (dashed) boxes")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
