"""Conversion of the authors' released PyTorch weights into bl_keras models.

- `read_state_dict(path)`: the tensors of a `.pth` / `.pth.tar` file (zip or legacy format) as
  numpy arrays, read without torch and without running code from the file;
- `from_official(name, state_dict)` / `from_checkpoint(name, path)`: a model with those weights;
- `python -m bl_keras.convert`: the same from the command line, to a `.keras` file;
- `suggest_architectures(state_dict)`: the models (and alpha / beta) a state dict fits.
"""

from bl_keras.convert.checkpoint import CheckpointReadError, read_state_dict
from bl_keras.convert.expected_shapes import spec_state_dict_shapes
from bl_keras.convert.fit import suggest_architectures
from bl_keras.convert.mismatch import CheckpointMismatchError
from bl_keras.convert.official import (
    expected_state_dict_shapes,
    from_checkpoint,
    from_official,
    load_official_weights,
    strip_module_prefix,
    weight_map,
)

__all__ = [
    "CheckpointMismatchError",
    "CheckpointReadError",
    "expected_state_dict_shapes",
    "from_checkpoint",
    "from_official",
    "load_official_weights",
    "read_state_dict",
    "spec_state_dict_shapes",
    "strip_module_prefix",
    "suggest_architectures",
    "weight_map",
]
