"""Conventions of the package's commands (`python -m bl_keras.<subpackage>`): help that shows
every default, and never replacing an existing model unasked."""

import argparse
import os


class HelpFormatter(argparse.RawDescriptionHelpFormatter,
                    argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and each option's default after its help (unless the
    help already states it, or there is none)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


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
