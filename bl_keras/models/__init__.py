"""Model zoo: named constructors and a registry (`get`, `list_models`)."""

from bl_keras.models.image import *  # noqa: F401,F403  (the named constructors)
from bl_keras.models.image import __all__ as _image_models
from bl_keras.models.registry import get, get_entry, list_models, register_model
from bl_keras.models.resnet import resnet_family

__all__ = ["get", "get_entry", "list_models", "register_model", "resnet_family", *_image_models]
