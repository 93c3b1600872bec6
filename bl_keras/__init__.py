"""bl_keras: Big-Little Net (bL-Net, ICLR 2019) in Keras 3 / TensorFlow.

    import bl_keras
    model = bl_keras.models.get("bl_resnet50", alpha=2, beta=4)
    bl_keras.profiling.profile(model, 224)   # params and multiply-accumulates
"""

import importlib.util

__version__ = "0.1.0"

# Importing the subpackages registers every layer and model class the package writes into a
# `.keras` file, so `keras.models.load_model` needs nothing but `import bl_keras`.
from bl_keras import (blockdrop, convert, detection, layers, models, profiling,  # noqa: E402
                      slimmable, speech, spottune, training)
from bl_keras.saving import load_model  # noqa: E402

# The detection backbone needs KerasHub (the `detection` extra): where it is installed, it is
# registered too, so a detector's `.keras` file also loads after `import bl_keras`.
if importlib.util.find_spec("keras_hub") is not None:
    from bl_keras.detection import backbone as _detection_backbone  # noqa: E402, F401

__all__ = ["blockdrop", "convert", "detection", "layers", "load_model", "models", "profiling",
           "slimmable", "speech", "spottune", "training", "__version__"]
