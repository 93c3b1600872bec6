"""The paper's reported numbers, for side-by-side comparison (profile CLI, tests, README).

Each row: label, model name, builder options, input size (an image side, or an (H, W, C) shape),
params (M), GFLOPs (= GMACs), top-1 error or WER (%) and K80 speed (ms per batch of 16) where
reported. `note` records where our reproduction knowingly departs from a reported number.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class PaperRow:
    label: str
    model: str
    options: dict
    size: int
    mparams: float
    gmacs: float
    top1_error: float = None
    ms_per_batch: float = None
    note: str = None


def _bl(alpha=2, beta=4):
    return {"alpha": alpha, "beta": beta}


# Table 1: complexity of the little branch (bL-ResNet-50).
TABLE1 = (
    PaperRow("ResNet-50", "resnet50", {}, 224, 25.55, 4.09, 23.66),
    PaperRow("bL-ResNet-50 (a=2, b=2)", "bl_resnet50", _bl(2, 2), 224, 26.97, 2.91, 22.72),
    PaperRow("bL-ResNet-50 (a=2, b=4)", "bl_resnet50", _bl(2, 4), 224, 26.69, 2.85, 22.69),
    PaperRow("bL-ResNet-50 (a=4, b=2)", "bl_resnet50", _bl(4, 2), 224, 26.31, 2.49, 23.20),
    PaperRow("bL-ResNet-50 (a=4, b=4)", "bl_resnet50", _bl(4, 4), 224, 26.24, 2.48, 23.15),
)


def _family(title, plain, bl, plain_row, bl_row, bl256_row):
    """Three rows of Table 2: baseline, bL at 224, bL at 256 (params, GMACs, error, ms)."""
    return (
        PaperRow(title, plain, {}, 224, *plain_row),
        PaperRow(f"bL-{title} (a=2, b=4)", bl, _bl(), 224, *bl_row),
        PaperRow(f"bL-{title}@256 (a=2, b=4)", bl, _bl(), 256, *bl256_row),
    )


# Table 2: bL-ResNet / bL-ResNeXt / bL-SEResNeXt against their baselines.
TABLE2 = (
    _family("ResNet-101", "resnet101", "bl_resnet101",
            (44.54, 7.80, 21.95, 186), (41.85, 3.89, 21.80, 140), (41.85, 5.08, 21.04, 162))
    + _family("ResNet-152", "resnet152", "bl_resnet152",
              (60.19, 11.51, 21.51, 266), (57.36, 5.04, 21.16, 178), (57.36, 6.58, 20.34, 205))
    + _family("ResNeXt-50 (32x4d)", "resnext50_32x4d", "bl_resnext50_32x4d",
              (25.03, 4.23, 22.20, 157), (26.19, 3.03, 21.60, 125), (26.19, 3.95, 20.96, 153))
    + _family("ResNeXt-101 (32x4d)", "resnext101_32x4d", "bl_resnext101_32x4d",
              (44.17, 7.97, 21.20, 269), (41.51, 4.08, 21.08, 169), (41.51, 5.33, 20.48, 203))
    + _family("ResNeXt-101 (64x4d)", "resnext101_64x4d", "bl_resnext101_64x4d",
              (83.46, 15.46, 20.73, 485), (77.36, 7.14, 20.48, 263), (77.36, 9.32, 19.65, 318))
    + _family("SEResNeXt-50 (32x4d)", "seresnext50_32x4d", "bl_seresnext50_32x4d",
              (27.56, 4.23, 21.78, 216), (28.77, 3.03, 21.44, 163), (28.77, 3.95, 20.74, 192))
    + _family("SEResNeXt-101 (32x4d)", "seresnext101_32x4d", "bl_seresnext101_32x4d",
              (48.96, 7.97, 21.00, 376), (45.88, 4.08, 20.87, 235), (45.88, 5.33, 19.87, 270))
)

SPEECH_INPUT = (64, 49, 3)

# Table 3: acoustic models (64 log-mel bins x 49 frames x 3, 32000 states). The paper's params
# (about 3M) cannot be reproduced from Appendix B: its output layer alone has 16.4M weights.
TABLE3 = (
    PaperRow("ResNet-22", "speech.resnet22", {}, SPEECH_INPUT, 3.02, 1.11, 14.67),
    PaperRow("bL-ResNet-22 (a=4, b=1)", "speech.bl_resnet22", _bl(4, 1), SPEECH_INPUT, 3.15,
             0.68, 14.72),
    PaperRow("bL-ResNet-22 (a=4, b=2)", "speech.bl_resnet22", _bl(4, 2), SPEECH_INPUT, 3.11,
             0.66, 14.47),
    PaperRow("bL-ResNet-22 (a=4, b=3)", "speech.bl_resnet22", _bl(4, 3), SPEECH_INPUT, 3.10,
             0.65, 14.66),
    PaperRow("bL-ResNet-22 (a=2, b=3)", "speech.bl_resnet22", _bl(2, 3), SPEECH_INPUT, 3.07,
             0.77, 14.46),
    PaperRow("bL-ResNet-22 (a=4, b=1) concat", "speech.bl_resnet22",
             dict(_bl(4, 1), merge="concat"), SPEECH_INPUT, 3.18, 0.70, 14.67),
    PaperRow("bL-PYR-ResNet-22 (a=4, b=1)", "speech.bl_pyr_resnet22", _bl(4, 1), SPEECH_INPUT,
             3.32, 0.98, 14.50),
)

# Table 6: ResNets at different input resolutions (Appendix A.3).
TABLE6 = (
    PaperRow("ResNet-50", "resnet50", {}, 224, 25.55, 4.09, 23.66),
    PaperRow("ResNet-50-lowres", "resnet50_lowres", {}, 224, 25.60, 1.29, 26.10),
    PaperRow("ResNet-101", "resnet101", {}, 224, 44.54, 7.80, 21.95),
    PaperRow("ResNet-101-lowres", "resnet101_lowres", {}, 224, 44.57, 2.22, 24.80),
)

# Table 7: merging schemes and number of branches (Appendix A.4).
TABLE7 = (
    PaperRow("ResNet-50", "resnet50", {}, 224, 25.55, 4.09, 23.66),
    PaperRow("bL-ResNet-50 (addition, K=2)", "bl_resnet50", _bl(), 224, 26.69, 2.85, 22.69),
    PaperRow("bL-ResNet-50 (concatenation, K=2)", "bl_resnet50", dict(_bl(), merge="concat"),
             224, 20.57, 2.01, 24.04),
    PaperRow("bL-ResNet-50 (addition, K=3)", "bl_resnet50", dict(_bl(), branches=3), 224,
             27.23, 3.91, 24.12),
)

# Table 8: number of merges m (Appendix A.4).
TABLE8 = (
    PaperRow("bL-ResNet-50 (m=4)", "bl_resnet50", _bl(), 224, 26.69, 2.85, 22.69),
    PaperRow("bL-ResNet-50 (m=2)", "bl_resnet50", dict(_bl(), num_merges=2), 224, 26.66, 2.74,
             23.48),
    PaperRow("bL-ResNet-50 (m=1)", "bl_resnet50", dict(_bl(), num_merges=1), 224, 26.64, 2.64,
             24.57),
    PaperRow("bL-ResNet-101 (m=4)", "bl_resnet101", _bl(), 224, 41.85, 3.89, 21.80),
    PaperRow("bL-ResNet-101 (m=7)", "bl_resnet101", dict(_bl(), num_merges=7), 224, 44.44, 5.21,
             21.85),
)

_BL_SHUFFLE = {"alpha": 2, "beta": 2}

# Table 9: ShuffleNetV2 and bL-ShuffleNetV2 (alpha 2, beta 2) (Appendix A.5); GMACs here, the
# paper gives MFLOPs.
TABLE9 = (
    PaperRow("ShuffleNetV2 1x", "shufflenet_v2_x1_0", {}, 224, 2.30, 0.146, 30.60),
    PaperRow("ShuffleNetV2 1.5x", "shufflenet_v2_x1_5", {}, 224, 3.51, 0.299, 28.03),
    PaperRow("ShuffleNetV2 2x", "shufflenet_v2_x2_0", {}, 224, 7.40, 0.588, 26.85),
    PaperRow("bL-ShuffleNetV2@256 1x", "bl_shufflenet_v2_x1_0", _BL_SHUFFLE, 256, 2.33, 0.150,
             30.84),
    PaperRow("bL-ShuffleNetV2@256 1.5x", "bl_shufflenet_v2_x1_5", _BL_SHUFFLE, 256, 4.80, 0.298,
             27.83, note="params: 4.80M breaks the paper's own trend (baseline 3.51M; bL adds "
             "0.03M at 1x and 0.20M at 2x); our 3.66M follows it, see WORKSPACE_NOTES.md"),
    PaperRow("bL-ShuffleNetV2@256 2x", "bl_shufflenet_v2_x2_0", _BL_SHUFFLE, 256, 7.60, 0.590,
             26.38),
)

TABLES = {"1": TABLE1, "2": TABLE2, "3": TABLE3, "6": TABLE6, "7": TABLE7, "8": TABLE8,
          "9": TABLE9}
TABLE_TITLES = {
    "1": "Table 1: complexity of the Little-Branch (bL-ResNet-50)",
    "2": "Table 2: bL-ResNet, bL-ResNeXt and bL-SEResNeXt against their baselines",
    "3": "Table 3: speech acoustic models (input 64x49x3, 32000 states; the paper's params of "
         "about 3M are not reproducible, see WORKSPACE_NOTES.md)",
    "6": "Table 6: ResNets at different input resolutions (Appendix A.3)",
    "7": "Table 7: merging schemes and number of branches K of bL-ResNet-50 (Appendix A.4)",
    "8": "Table 8: number of merges m of bL-ResNet (a=2, b=4) (Appendix A.4)",
    "9": "Table 9: ShuffleNetV2 and bL-ShuffleNetV2 (a=2, b=2) (Appendix A.5)",
}
# Multiply-accumulates are printed in GMACs, except where the paper gives MFLOPs.
TABLE_MAC_UNITS = {"9": "M"}


@dataclasses.dataclass(frozen=True)
class DetectionRow:
    """A row of Table 10: Faster R-CNN + FPN, 300 proposals; GFLOPs (= GMACs) of the whole
    detector."""
    label: str
    model: str
    options: dict
    dataset: str
    image_shape: tuple
    num_classes: int
    gmacs: float
    map: float  # VOC07 test mAP@0.5, COCO val2017 mAP@[.5:.95] (%)


# Table 10 (Appendix A.6): VOC07 at 600x1024, COCO val2017 at 800x1344.
TABLE10 = (
    DetectionRow("ResNet-101", "resnet101", {}, "VOC07", (600, 1024, 3), 20, 137.70, 81.5),
    DetectionRow("bL-ResNet-101 (a=2, b=4)", "bl_resnet101", _bl(2, 4), "VOC07",
                 (600, 1024, 3), 20, 89.21, 81.4),
    DetectionRow("ResNet-101", "resnet101", {}, "COCO", (800, 1344, 3), 80, 234.85, 39.2),
    DetectionRow("bL-ResNet-101 (a=2, b=4)", "bl_resnet101", _bl(2, 4), "COCO",
                 (800, 1344, 3), 80, 151.11, 39.5),
)
