"""RetinaNet's training loss per image, for a custom training loop under any strategy.

KerasHub's `RetinaNetObjectDetector.compute_loss` sums focal (classification) and Huber (box)
losses over the anchors of the whole batch and divides by the batch's positive anchors: on
several replicas each would divide by its own count. Here the same terms (the same Keras loss
classes, anchors encoded by the detector's own label encoder) are divided by each image's
positive anchors (at least 1), giving one loss per image that the trainer averages over the
global batch like any per-example loss. For a batch of one image the two are equal (tested,
with KerasHub compiled with the same focal loss). The focal loss is the RetinaNet paper's,
alpha 0.25 and gamma 2 (`FOCAL`); KerasHub's default leaves out alpha.
KerasHub zeroes a batch without any positive anchor; here such an image still learns its
negatives.
"""

import keras
from keras import ops

IGNORED = -2.0


def focal_loss(reduction=None):
    """The RetinaNet paper's focal loss (alpha 0.25 on the positives, gamma 2), from logits."""
    return keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.25,
                                                gamma=2.0, from_logits=True,
                                                reduction=reduction)


def per_image_loss(detector, images, targets, outputs):
    """[batch] RetinaNet losses of `outputs` (the detector's {"bbox_regression",
    "cls_logits"}) for `targets` {"boxes", "labels"} in the detector's box format."""
    height, width = ops.shape(images)[1], ops.shape(images)[2]
    encoder = detector.label_encoder
    if encoder.bounding_box_format != detector.bounding_box_format:
        targets = keras.utils.bounding_boxes.convert_format(
            targets, source=detector.bounding_box_format,
            target=encoder.bounding_box_format, height=height, width=width)
    boxes, labels = encoder(images=images, gt_boxes=targets["boxes"],
                            gt_classes=targets["labels"])
    positive = ops.cast(labels > -1.0, "float32")
    normaliser = ops.maximum(ops.sum(positive, axis=1, keepdims=True), 1.0)
    classes = ops.one_hot(ops.cast(labels, "int32"), detector.num_classes, dtype="float32")
    focal = focal_loss()
    huber = keras.losses.Huber(reduction=None)
    cls_loss = focal(classes, ops.cast(outputs["cls_logits"], "float32"))
    box_loss = huber(boxes, ops.cast(outputs["bbox_regression"], "float32"))
    cls_weight = ops.cast(ops.not_equal(labels, IGNORED), "float32") / normaliser
    return ops.sum(cls_loss * cls_weight + box_loss * positive / normaliser, axis=1)
