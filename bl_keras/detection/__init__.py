"""Object detection on the zoo's backbones (paper Appendix A.6, Table 10).

`PyramidBackbone` plugs any image model into KerasHub's detectors (`pip install
"bl_keras[detection]"`); `cost` counts the paper's Faster R-CNN + FPN (no KerasHub needed).
"""

__all__ = ["PyramidBackbone"]


def __getattr__(name):  # KerasHub is imported only when the backbone is asked for
    if name == "PyramidBackbone":
        from bl_keras.detection.backbone import PyramidBackbone

        return PyramidBackbone
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
