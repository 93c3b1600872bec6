"""The rule of every command that writes a model: never replace an existing one unasked."""

import os


def check_can_write(path, overwrite, flag="--output"):
    """Raise FileExistsError if `path` is a file or a non-empty directory and not `overwrite`.

    A deployed SavedModel directory or a `.tflite` file lost to a mistyped path cannot be
    recovered; an empty directory (made for the output) is fine."""
    if overwrite or not os.path.exists(path):
        return
    if os.path.isdir(path) and not os.listdir(path):
        return
    kind = "directory is not empty" if os.path.isdir(path) else "file exists"
    raise FileExistsError(f"{flag} {path}: the {kind}; pass --overwrite to replace it, or "
                          "choose a new path")
