"""A KerasHub RetinaNet on a zoo backbone, and its decoded predictions as NumPy boxes.

    detector = retinanet("bl_resnet101", {"alpha": 2, "beta": 4}, num_classes=20)
    detections = predict_boxes(detector, images)   # per image: boxes (yxyx), classes, scores

The detector is KerasHub's own `RetinaNetObjectDetector` (its FPN, heads, anchors, label encoder
and non-maximum suppression); only the image encoder is ours (`PyramidBackbone`). The anchor
size (KerasHub's default: 4 x the level's stride, i.e. 32 px on P3) and the number of head
convolutions are options, so small images with small objects (the generated shapes) get anchors
of their size and a cheaper head.
"""

import keras
import keras_hub
import numpy as np
from keras_hub.layers import AnchorGenerator, NonMaxSuppression

from bl_keras.detection.backbone import PyramidBackbone

# Detections are kept down to a low score, as torchvision's RetinaNet does: mAP integrates over
# every score (KerasHub's default threshold, 0.5, is a display threshold and lowers mAP).
SCORE_THRESHOLD = 0.05


def retinanet(model, model_options=None, *, num_classes, image_shape=(None, None, 3),
              min_level=3, max_level=7, anchor_size=4, head_convs=4, max_detections=100,
              head_group_norm=False, classifier=None):
    """RetinaNet with `num_classes` classes on registered image model `model`, its heads
    initialised as the RetinaNet paper's (`init_heads`); `head_group_norm` adds GroupNorm to
    the heads (KerasHub's option; it helps a detector trained from scratch, as the demo's; its
    pyramid's BatchNorm option is not offered: in KerasHub 0.32 it builds output norms that are
    never applied, with the momentum set to the epsilon); `classifier` (a loaded model of that
    architecture, e.g. a `train.imagenet` run's `.keras`) gives the backbone its weights."""
    options = dict(model_options or {})
    if classifier is not None:
        encoder = PyramidBackbone.from_classifier(classifier, model, image_shape, **options)
    else:
        encoder = PyramidBackbone(model, options, image_shape=image_shape)
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=min_level, max_level=max_level, use_p5=False,
        image_shape=image_shape)
    anchors = AnchorGenerator("yxyx", min_level=min_level, max_level=max_level, num_scales=3,
                              aspect_ratios=[0.5, 1.0, 2.0], anchor_size=anchor_size)
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=num_classes, bounding_box_format="yxyx",
        anchor_generator=anchors, pre_logits_num_conv_layers=head_convs,
        use_prediction_head_norm=head_group_norm,
        prediction_decoder=NonMaxSuppression(
            bounding_box_format="yxyx", from_logits=True, iou_threshold=0.5,
            confidence_threshold=SCORE_THRESHOLD, max_detections=max_detections))
    init_heads(detector)
    return detector


def init_heads(detector, prior=0.01, stddev=0.01, seed=0):
    """RetinaNet's head initialisation (Lin et al. 2017, section 4.1): convolution kernels
    drawn from N(0, 0.01^2), biases 0, except the classification output's biases at
    -log((1 - prior) / prior), so every anchor starts as background with probability 0.99.
    KerasHub 0.32 draws the kernels with std 0.05 and puts the prior on the box head instead:
    its first logits reach +-20 and the first focal losses are thousands per image."""
    rng = keras.random.SeedGenerator(seed)
    for head in (detector.classification_head, detector.box_head):
        for layer in [*head.conv_layers, head.prediction_layer]:
            layer.kernel.assign(keras.random.normal(layer.kernel.shape, stddev=stddev,
                                                    dtype=layer.kernel.dtype, seed=rng))
            if layer.bias is not None:  # (none before a GroupNorm)
                layer.bias.assign(keras.ops.zeros(layer.bias.shape, layer.bias.dtype))
    logits = detector.classification_head.prediction_layer.bias
    logits.assign(keras.ops.full(logits.shape, -np.log((1 - prior) / prior), logits.dtype))


def detections_to_numpy(decoded):
    """KerasHub's decoded batch ({"boxes", "confidence", "labels", "num_detections"}) as one
    dict of NumPy arrays per image: boxes [n, 4] yxyx pixels, classes [n], scores [n]."""
    decoded = {k: keras.ops.convert_to_numpy(v) for k, v in decoded.items()}
    images = []
    for i, count in enumerate(decoded["num_detections"]):
        count = int(count)
        images.append({"boxes": decoded["boxes"][i, :count].astype(np.float64),
                       "classes": decoded["labels"][i, :count].astype(np.int64),
                       "scores": decoded["confidence"][i, :count].astype(np.float64)})
    return images


def predict_boxes(detector, images):
    """Detections of `detector` on a batch of (normalised) `images`, one dict per image."""
    outputs = detector(images, training=False)
    return detections_to_numpy(detector.decode_predictions(outputs, images))
