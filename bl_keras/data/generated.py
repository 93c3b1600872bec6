"""Directories of generated data (the image and speech demo sets).

A marker file in the root records the generation parameters: a tree is rebuilt only when they
change, an interrupted build (marker without `complete`) is rebuilt from scratch, and a
train/val tree without our marker (someone's real data) is never touched.
"""

import contextlib
import json
import os
import shutil


def is_current(root, marker_name, params, splits):
    """True if `root` holds a complete tree generated with `params`."""
    marker = os.path.join(root, marker_name)
    if os.path.exists(marker):
        with open(marker) as f:
            return json.load(f) == dict(params, complete=True)
    if any(os.path.exists(os.path.join(root, s)) for s in splits):
        raise FileExistsError(f"{root} holds a {'/'.join(splits)} tree without {marker_name}")
    return False


@contextlib.contextmanager
def building(root, marker_name, params, splits):
    """Claims `root` (marker without `complete`), clears `splits`, and marks the tree complete
    when the body finishes without an error."""
    marker = os.path.join(root, marker_name)
    os.makedirs(root, exist_ok=True)
    _write(marker, dict(params, complete=False))
    for split in splits:
        shutil.rmtree(os.path.join(root, split), ignore_errors=True)
    yield
    _write(marker, dict(params, complete=True))


def _write(path, content):
    with open(path, "w") as f:
        json.dump(content, f)
