"""Bad flags end the run with one line naming the flag; every shipped flagfile parses."""

import json
import subprocess
import sys

import pytest

from tests.train.helpers import REPO, run_module, tiny_data, train_args


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("data"))


def _error_line(proc):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("extra,flag", [
    (["--model=bl_resnet51"], "--model"),
    (["--batch_size=-8"], "--batch_size"),
    (["--epochs=0"], "--epochs"),
    (["--strategy=mirrored", "--cpu_devices=2", "--batch_size=7"], "--batch_size"),
    (["--alpha=2", "--model=resnet50"], "--alpha"),
    (["--num_merges=2", "--model=bl_shufflenet_v2_x1_0"], "--num_merges"),
    (["--stage_depths=2,2,x,2"], "--stage_depths"),
    (["--precision=float8"], "--precision"),
    (["--no_such_flag=1"], "no_such_flag"),
])
def test_bad_flag_is_one_line_naming_it(data, tmp_path, extra, flag):
    line = _error_line(run_module("train.imagenet", train_args(data, tmp_path / "run", *extra)))
    assert flag in line


def test_missing_data_dir(tmp_path):
    line = _error_line(run_module("train.imagenet",
                                  train_args(tmp_path / "nowhere", tmp_path / "run")))
    assert "--data_dir" in line and "nowhere" in line


@pytest.mark.parametrize("module", ["train.imagenet", "train.speech", "train.mutualnet",
                                    "train.study"])
def test_help_lists_the_entry_points_flags_and_exits_0(module):
    short, full = (run_module(module, [arg]) for arg in ("--help", "--helpfull"))
    assert short.returncode == 0 and full.returncode == 0, short.stderr + full.stderr
    for proc in (short, full):
        assert f"python -m {module}" in proc.stdout  # the usage
        assert "--model_dir:" in proc.stdout and "--[no]eval:" in proc.stdout
        assert "tensor_tracer" not in proc.stdout and "--pfor" not in proc.stdout
    assert "--verbosity:" in full.stdout and "--verbosity:" not in short.stdout


def test_helpfull_documents_the_flags():
    proc = run_module("train.imagenet", ["--helpfull"])
    assert proc.returncode == 0
    for flag in ("strategy", "checkpoint_every", "weight_decay_all", "precision",
                 "jit_compile", "sync_bn", "data_source", "steps_per_epoch", "label_smoothing",
                 "warmup_epochs", "image_size", "model_dir"):
        assert f"--{flag}:" in proc.stdout or f"--[no]{flag}:" in proc.stdout


def run_script(script):
    """The JSON the Python `script` prints last, run in a fresh process at the repository root
    (flags are defined once per process)."""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


CHECK_SPEECH_DEFAULTS = """
import dataclasses, json
from absl import flags
from bl_keras.training import TrainConfig
from train import speech
print(json.dumps({f.name: [f.default, flags.FLAGS[f.name].default,
                           f.metadata["help"] in flags.FLAGS[f.name].help]
                  for f in dataclasses.fields(TrainConfig)}))
"""


def test_trainer_flags_are_the_train_config_options_with_the_recipe_defaults():
    options = run_script(CHECK_SPEECH_DEFAULTS)
    assert all(same_help for _, _, same_help in options.values())
    changed = {name: flag for name, (default, flag, _) in options.items() if flag != default}
    assert changed == dict(batch_size=512, epochs=16, lr=0.03, lr_batch_reference=512,
                           lr_schedule="halving", weight_decay=1e-6, weight_decay_all=True,
                           clip_global_norm=10.0)
    assert options["cpu_devices"][1] == 0 and options["eval_batch_size"][1] is None


CHECK_FLAGFILES = """
import glob, json
from absl import flags
from train import imagenet
checked = {}
for path in sorted(glob.glob("configs/imagenet/*.flags")):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.imagenet", "--flagfile=" + path])
    checked[path] = [flags.FLAGS.model, imagenet.model_options_from_flags()]
print(json.dumps(checked))
"""


def test_every_imagenet_flagfile_parses_to_a_model_and_its_options():
    checked = run_script(CHECK_FLAGFILES)
    assert len(checked) >= 33
    assert checked["configs/imagenet/bl_resnet50_k3.flags"] == [
        "bl_resnet50", {"zero_init_residual": True, "alpha": 2, "beta": 4, "branches": 3}]
    assert checked["configs/imagenet/bl_resnet101_m7.flags"][1]["num_merges"] == 7
    assert checked["configs/imagenet/bl_resnet50_concat.flags"][1]["merge"] == "concat"


CHECK_RECIPE_FLAGFILES = """
import glob, json
from absl import flags
from train import blockdrop, study
from train import flags as train_flags
checked = {}
for path in sorted(glob.glob("configs/blockdrop/*.flags") + glob.glob("configs/study/*.flags")):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train", "--flagfile=" + path, "--model_dir=x"])
    config = train_flags.train_config()
    F = flags.FLAGS
    checked[path] = dict(stage=F.stage, epochs=config.epochs, lr=config.lr, gamma=F.gamma,
                         optimizer=config.optimizer, steps=list(config.step_epochs),
                         batch=config.batch_size, models=F.models)
print(json.dumps(checked))
"""


def test_blockdrop_and_study_flagfiles_parse_to_the_authors_recipes():
    checked = run_script(CHECK_RECIPE_FLAGFILES)
    assert len(checked) == 10
    finetune = checked["configs/blockdrop/resnet110_cifar10_finetune.flags"]
    assert finetune == dict(stage="finetune", epochs=2000, lr=1e-4, gamma=10.0,
                            optimizer="adam", steps=[1600], batch=256, models=None)
    curriculum = checked["configs/blockdrop/resnet110_cifar10_curriculum.flags"]
    assert (curriculum["batch"], curriculum["lr"], curriculum["gamma"]) == (2048, 1e-3, 1.0)
    assert checked["configs/blockdrop/resnet101_imagenet_finetune.flags"]["gamma"] == 5.0
    assert checked["configs/blockdrop/cifar_resnet110_cifar10.flags"]["steps"] == [82, 123]
    assert checked["configs/blockdrop/demo.flags"]["stage"] == "all"
    assert checked["configs/blockdrop/fashion_mnist.flags"]["batch"] == 128
    assert checked["configs/study/fashion_mnist.flags"]["models"] == [
        "cifar_resnet20", "bl_cifar_resnet20"]


CHECK_DETECTION_FLAGFILES = """
import glob, json
from absl import flags
from train import detection
from train import flags as train_flags
checked = {}
for path in sorted(glob.glob("configs/detection/*_*.flags") + ["configs/detection/demo.flags"]):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.detection", "--flagfile=" + path])
    config = train_flags.train_config()
    F = flags.FLAGS
    checked[path] = dict(model=F.model, options=detection.model_options_from_flags(),
                         size=F.image_size, train=F.train_sets, eval=F.eval_set,
                         steps=list(config.step_epochs), batch=config.batch_size,
                         model_dir=config.model_dir)
print(json.dumps(checked))
"""


def test_detection_flagfiles_follow_table_10():
    checked = run_script(CHECK_DETECTION_FLAGFILES)
    assert len(checked) == 5
    voc, coco = (checked[f"configs/detection/bl_resnet101_{d}.flags"] for d in ("voc", "coco"))
    assert voc["options"]["alpha"] == 2 and voc["options"]["beta"] == 4
    assert (voc["size"], coco["size"]) == (["600", "1024"], ["800", "1344"])
    assert voc["train"] == ["voc/2007:train+validation", "voc/2012:train+validation"]
    assert (voc["eval"], coco["eval"]) == ("voc/2007:test", "coco/2017:validation")
    assert coco["steps"] == [8, 11] and coco["batch"] == 16
    assert checked["configs/detection/resnet101_voc.flags"]["model"] == "resnet101"
    assert len({run["model_dir"] for run in checked.values()}) == 5
