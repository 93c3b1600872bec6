"""`bl_keras.load_model`: `keras.models.load_model` with errors that say what to do.

Keras finds the package's classes (`bl_keras>BigLittleModule`, ...) only once `import bl_keras`
has registered them; a file naming a class this version does not define (written by a newer
bl_keras, say) fails with Keras' advice to decorate the class, which points the wrong way.
"""

import re

import keras

_UNKNOWN_CLASS = re.compile(r"Could not locate class '([^']+)'")


def load_model(path, compile=False, safe_mode=True, **kwargs):
    """Load a `.keras` file written by bl_keras (any model, layer or slimmable network)."""
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=safe_mode, **kwargs)
    except (TypeError, ValueError) as error:
        match = _UNKNOWN_CLASS.search(str(error))
        if not match:
            raise
        import bl_keras

        raise TypeError(
            f"{path}: the file uses the class {match.group(1)!r}, which bl_keras "
            f"{bl_keras.__version__} does not define (every class it defines is registered by "
            "`import bl_keras`); the file may come from a newer bl_keras, or from a package "
            "that must be imported before loading.") from error
