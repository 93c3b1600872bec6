"""Object detection on the zoo's backbones (paper Appendix A.6, Table 10), with KerasHub's
detectors (`pip install "bl_keras[detection]"`)."""

from bl_keras.detection.backbone import PyramidBackbone

__all__ = ["PyramidBackbone"]
