"""Conversion of the authors' released PyTorch weights into bl_keras models."""

from bl_keras.convert.official import (
    CheckpointMismatchError,
    expected_state_dict_shapes,
    from_official,
    load_official_weights,
    strip_module_prefix,
    weight_map,
)

__all__ = [
    "CheckpointMismatchError",
    "expected_state_dict_shapes",
    "from_official",
    "load_official_weights",
    "strip_module_prefix",
    "weight_map",
]
