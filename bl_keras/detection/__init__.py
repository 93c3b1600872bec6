"""Object detection on the zoo's backbones (paper Appendix A.6, Table 10).

`PyramidBackbone` plugs any image model into KerasHub's detectors and `detector.retinanet`
builds KerasHub's RetinaNet on it (`pip install "bl_keras[detection]"`); `task` trains it on the
shared trainer (`python -m train.detection`) with `loss` and evaluates mAP with `metrics`; `data`
reads tfds VOC / COCO and `shapes` generates the demo's scenes; `report` compares with a trivial
detector and draws boxes; `cost` counts the paper's Faster R-CNN + FPN (no KerasHub needed).
"""

__all__ = ["PyramidBackbone"]


def __getattr__(name):  # KerasHub is imported only when the backbone is asked for
    if name == "PyramidBackbone":
        from bl_keras.detection.backbone import PyramidBackbone

        return PyramidBackbone
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
