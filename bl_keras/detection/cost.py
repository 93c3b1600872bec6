"""Multiply-accumulates of a Faster R-CNN + FPN detector on a zoo backbone (paper Table 10).

The paper's detector (Lin et al.'s FPN, as in Detectron): the backbone's C2-C5; FPN lateral
1x1 convolutions (C_k -> 256, k = 2..5) and 3x3 output convolutions (256 -> 256) on P2-P5, P6
a stride-2 subsampling of P5 (no MACs); the RPN's shared 3x3 convolution (256 -> 256) and its
1x1 objectness (A = 3 anchors) and box (4A) predictors on P2-P6; the RoI head on `proposals`
regions: 7x7x256 RoIAlign features -> fc 1024 -> fc 1024 -> class scores (C + 1) and
class-specific boxes (4 (C + 1)). Feature-map sizes are the backbone's own (same padding:
ceil(side / stride)). Only convolutions and dense layers count, one multiply-add per MAC, the
rule of every other table; the backbone is counted by `bl_keras.profiling`.
"""

import dataclasses
import math

from bl_keras import models, profiling

FPN_CHANNELS = 256
ANCHORS = 3
REPRESENTATION = 1024  # the two fc layers of the RoI head
ROI_SIZE = 7


@dataclasses.dataclass(frozen=True)
class DetectorMacs:
    backbone: int
    fpn: int
    rpn_conv: int  # the RPN's shared 3x3 convolution on P2-P6
    rpn_predictors: int
    roi_head: int

    @property
    def heads(self):
        return self.fpn + self.rpn_conv + self.rpn_predictors + self.roi_head

    @property
    def total(self):
        return self.backbone + self.heads


def feature_shapes(features, image_shape):
    """{level: (height, width, channels)} of the feature model's C2-C5 for `image_shape`."""
    import keras

    spec = features.compute_output_spec(keras.KerasTensor((1, *image_shape)))
    return {level: tuple(int(d) for d in tensor.shape[1:]) for level, tensor in spec.items()}


def faster_rcnn_fpn_macs(model, image_shape, num_classes, proposals=300, **options):
    """`DetectorMacs` of Faster R-CNN + FPN on registered model `model` (builder `options`) for
    images of `image_shape` (H, W, C) and `num_classes` object classes (background excluded)."""
    features = models.features(model, input_shape=(None, None, image_shape[-1]), **options)
    shapes = feature_shapes(features, tuple(image_shape))
    pyramid = [shapes[f"C{k}"] for k in (2, 3, 4, 5)]
    positions = [h * w for h, w, _ in pyramid]
    h5, w5, _ = pyramid[-1]
    positions.append(math.ceil(h5 / 2) * math.ceil(w5 / 2))  # P6
    lateral = sum(p * c * FPN_CHANNELS for p, (_, _, c) in zip(positions, pyramid))
    output = sum(p * 9 * FPN_CHANNELS * FPN_CHANNELS for p in positions[:4])
    rpn_conv = sum(p * 9 * FPN_CHANNELS * FPN_CHANNELS for p in positions)
    rpn_predictors = sum(p * FPN_CHANNELS * 5 * ANCHORS for p in positions)
    pooled = ROI_SIZE * ROI_SIZE * FPN_CHANNELS
    roi = proposals * (pooled * REPRESENTATION + REPRESENTATION * REPRESENTATION
                       + REPRESENTATION * 5 * (num_classes + 1))
    backbone = profiling.profile(features, tuple(image_shape)).macs
    return DetectorMacs(backbone, lateral + output, rpn_conv, rpn_predictors, roi)
