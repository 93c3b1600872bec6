"""`python -m bl_keras.benchmark --peers`: our model in TensorFlow and its ONNX export in ONNX
Runtime, the authors' architecture in PyTorch eager and ONNX Runtime, taking turns in one run.

The authors' repository is not downloadable here: its `models` package is stood in for by the
parity tests' independent PyTorch bL-ResNet (`tests/convert/torch_reference.py`, proven
against the released model's outputs), behind the authors' builder signature."""

import json
import os
import subprocess
import sys

import pytest

from bl_keras.layers import inference
from tests.conftest import REPO

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

AUTHORS_PACKAGE = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from tests.convert.torch_reference import build


def blresnet_model(depth, alpha, beta, num_classes=1000, pretrained=False):
    return build(f"bl_resnet{{depth}}", alpha=alpha, beta=beta, classes=num_classes)
"""


def run(*args):
    env = dict(os.environ)
    env.pop(inference.WEIGHT_CACHE_ENV, None)  # the benchmark's own choice: on, inferring
    return subprocess.run([sys.executable, "-m", "bl_keras.benchmark", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=900, env=env)


def test_peers_take_turns_with_our_model(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text(AUTHORS_PACKAGE)
    done = run("--models", "bl_resnet50", "--peers", f"--authors_code={tmp_path}",
               "--batch", "2", "--size", "64", "--classes", "10", "--steps", "2",
               "--warmup", "1", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    engines = [row["engine"] for row in rows]
    # Our Keras model as a server runs it: oneDNN's weight cache on, and named.
    assert engines[0].startswith("TensorFlow") and "(ours, Keras, weight cache)" in engines[0]
    assert any(e.startswith("ONNX Runtime") and "(ours" in e for e in engines)
    assert any(e.startswith("PyTorch") and "eager (authors')" in e for e in engines)
    assert any(e.startswith("ONNX Runtime") and "(authors'" in e for e in engines)
    assert rows[0]["ratio"] == 1.0
    assert all(row["model"] == "bl_resnet50" and row["images_per_sec"] > 0 for row in rows)


@pytest.mark.parametrize("args,message", [
    (["--peers", "--mode", "train"], "--peers takes inference steps"),
    (["--authors_code", "x"], "--authors_code applies to --peers"),
])
def test_bad_peer_flags(args, message):
    done = run("--models", "bl_resnet50", *args)
    assert done.returncode == 2 and message in done.stderr


def test_missing_authors_code_is_named(tmp_path):
    done = run("--models", "bl_resnet50", "--peers", f"--authors_code={tmp_path}",
               "--batch", "1", "--size", "32", "--classes", "3", "--steps", "1",
               "--warmup", "0")
    assert done.returncode == 1 and "no models/ package" in done.stderr
