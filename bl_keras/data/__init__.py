"""Input pipelines: ImageFolder / TFRecord / tfds / IDX sources, augmentation, demo data."""

from bl_keras.data.pipeline import SOURCES, DatasetInfo, build_dataset
from bl_keras.data.preprocessing import (IMAGENET_MEAN, IMAGENET_STD,
                                         decode_image, eval_preprocess,
                                         normalize, train_preprocess)
from bl_keras.data.sources import (Source, idx_source, imagefolder_source,
                                   tfds_source, tfrecord_source)

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "SOURCES", "DatasetInfo", "Source",
    "build_dataset", "decode_image", "eval_preprocess", "idx_source",
    "imagefolder_source",
    "make_demo_dataset", "normalize", "tfds_source", "tfrecord_source",
    "train_preprocess",
]


def __getattr__(name):
    # Imported lazily so `python -m bl_keras.data.demo` does not find its own
    # module already imported by this package.
    if name == "make_demo_dataset":
        from bl_keras.data.demo import make_demo_dataset
        return make_demo_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
