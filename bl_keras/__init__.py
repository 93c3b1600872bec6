"""bl_keras: Big-Little Net (bL-Net, ICLR 2019) in Keras 3 / TensorFlow.

    import bl_keras
    model = bl_keras.models.get("bl_resnet50", alpha=2, beta=4)
    bl_keras.profiling.profile(model, 224)   # params and multiply-accumulates
"""

__version__ = "0.1.0"

# Importing the subpackages registers every layer and model class the package writes into a
# `.keras` file, so `keras.models.load_model` needs nothing but `import bl_keras`.
from bl_keras import (blockdrop, convert, layers, models, profiling, slimmable, speech,  # noqa: E402
                      spottune, training)
from bl_keras.saving import load_model  # noqa: E402

__all__ = ["blockdrop", "convert", "layers", "load_model", "models", "profiling", "slimmable", "speech",
           "spottune", "training", "__version__"]
