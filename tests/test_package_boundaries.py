"""The library stands alone: importing `bl_keras` and every one of its modules loads nothing of
the training entry points (`train`), which are applications built on the library."""

import json
import subprocess
import sys

from tests.train.helpers import REPO

# Modules that import an optional extra at module level -> the extra's module; such a module is
# skipped only while its extra is not installed. Every module imports its extras lazily today.
OPTIONAL_EXTRAS = {}

IMPORT_EVERYTHING = """
import importlib, importlib.util, json, pkgutil, sys
optional = json.loads(sys.argv[1])
import bl_keras
imported, skipped = ["bl_keras"], []
for info in pkgutil.walk_packages(bl_keras.__path__, "bl_keras."):
    extra = optional.get(info.name)
    if extra and importlib.util.find_spec(extra) is None:
        skipped.append(info.name)
        continue
    importlib.import_module(info.name)
    imported.append(info.name)
leaked = sorted(m for m in sys.modules if m == "train" or m.startswith("train."))
print(json.dumps({"imported": imported, "skipped": skipped, "leaked": leaked}))
"""


def test_no_bl_keras_module_imports_the_training_entry_points():
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING, json.dumps(OPTIONAL_EXTRAS)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["leaked"] == []
    # The walk reached the whole package, the training machinery and the benchmark included.
    for module in ("bl_keras.training.trainer", "bl_keras.training.runner",
                   "bl_keras.benchmark.measure", "bl_keras.models.image"):
        assert module in result["imported"]
    assert len(result["imported"]) + len(result["skipped"]) > 60
