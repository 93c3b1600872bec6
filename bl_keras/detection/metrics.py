"""Detection mAP with pycocotools (the COCO API's own evaluation, well kept and the reference
every COCO number is computed with).

    result = mean_average_precision(ground_truth, predictions, num_classes=20)
    result["map"]      # COCO mAP@[.5:.95] (10 IoU thresholds, 101-point interpolation)
    result["map50"]    # AP at IoU 0.5: the VOC-style mAP@0.5 (COCO's 101-point interpolation,
                       # not VOC07's 11-point one: they differ by about a point)

`ground_truth` and `predictions` are lists, one entry per image, of dicts of NumPy arrays:
boxes [n, 4] in pixels (`box_format` "yxyx", as KerasHub's detectors, or "xyxy"), classes [n]
(0-based), predictions also scores [n]; ground truth may carry ignore [n] (VOC's "difficult"
objects: neither a hit nor a miss).
"""

import contextlib
import io

import numpy as np

BOX_FORMATS = ("yxyx", "xyxy")


def _xywh(boxes, box_format):
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if box_format == "yxyx":
        boxes = boxes[:, [1, 0, 3, 2]]
    elif box_format != "xyxy":
        raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ValueError(f"boxes with max < min: not in {box_format} order")
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def _coco_dataset(ground_truth, num_classes, box_format):
    images, annotations = [], []
    for image_id, truth in enumerate(ground_truth):
        images.append({"id": image_id})
        boxes = _xywh(truth["boxes"], box_format)
        ignore = np.asarray(truth.get("ignore", np.zeros(len(boxes))), bool)
        for box, label, skip in zip(boxes, np.asarray(truth["classes"]), ignore):
            if not 0 <= label < num_classes:
                raise ValueError(f"image {image_id}: class {label} outside [0, {num_classes})")
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": int(label), "bbox": box.tolist(),
                                "area": float(box[2] * box[3]), "iscrowd": int(skip),
                                "ignore": int(skip)})
    categories = [{"id": c} for c in range(num_classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def mean_average_precision(ground_truth, predictions, num_classes, box_format="yxyx",
                           max_detections=100):
    """{"map", "map50", "map75"} over the images of `ground_truth` and `predictions` (see the
    module docstring); classes without any ground truth do not count."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(ground_truth) != len(predictions):
        raise ValueError(f"{len(ground_truth)} ground-truth images but {len(predictions)} "
                         "predicted")
    coco = COCO()
    coco.dataset = _coco_dataset(ground_truth, num_classes, box_format)
    detections = []
    for image_id, predicted in enumerate(predictions):
        boxes = _xywh(predicted["boxes"], box_format)
        for box, label, score in zip(boxes, np.asarray(predicted["classes"]),
                                     np.asarray(predicted["scores"])):
            detections.append({"image_id": image_id, "category_id": int(label),
                               "bbox": box.tolist(), "score": float(score)})
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco.createIndex()
        if not coco.dataset["annotations"]:
            raise ValueError("no ground-truth boxes to evaluate against")
        if not detections:
            return {"map": 0.0, "map50": 0.0, "map75": 0.0}
        evaluation = COCOeval(coco, coco.loadRes(detections), iouType="bbox")
        evaluation.params.maxDets = [1, 10, max_detections]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    return {"map": float(stats[0]), "map50": float(stats[1]), "map75": float(stats[2])}
