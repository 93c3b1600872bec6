"""Small runs of the trainer for tests: tiny data, a tiny bL-ResNet, subprocess launches."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]

TINY_MODEL = [
    "--model=bl_resnet50", "--alpha=2", "--beta=2", "--stage_depths=2,2,2,2",
    "--stage_filters=32,32,64,64", "--stem_filters=8",
]


def tiny_data(root, classes=4, train=12, val=6, size=32):
    from bl_keras.data.demo import make_demo_dataset

    return make_demo_dataset(str(root), num_classes=classes, train_per_class=train,
                             val_per_class=val, image_size=size, seed=0)


def train_args(data_dir, model_dir, *extra):
    return [
        *TINY_MODEL, "--data_source=imagefolder", f"--data_dir={data_dir}",
        f"--model_dir={model_dir}", "--image_size=32", "--batch_size=8", "--epochs=2",
        "--lr=0.1", "--noprogress", "--eval_crop_fraction=1.0", "--min_crop_area=0.5",
        *extra,
    ]


def env(**extra):
    environment = dict(os.environ, PYTHONPATH=str(REPO), **extra)
    environment.pop("TF_CONFIG", None)
    environment.update(extra)
    return environment


def run_module(module, args, timeout=900, **env_extra):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env(**env_extra),
                          capture_output=True, text=True, timeout=timeout)


def popen_module(module, args, **env_extra):
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO,
                            env=env(**env_extra), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def kill_after_first_checkpoint(proc, model_dir, timeout=600):
    """SIGKILL the run `proc` once a checkpoint of `model_dir` is complete; returns its step."""
    import tensorflow as tf

    state = pathlib.Path(model_dir) / "checkpoints" / "checkpoint"  # written once one is whole
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not state.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return int(tf.train.latest_checkpoint(str(state.parent)).rsplit("-", 1)[1])


def metrics(model_dir):
    path = pathlib.Path(model_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def fingerprint_line(output):
    lines = [l for l in output.splitlines() if l.startswith("global_step=")]
    assert lines, output[-3000:]
    return lines[-1]
