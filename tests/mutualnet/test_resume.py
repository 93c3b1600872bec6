"""A MutualNet run killed with SIGKILL resumes from its last checkpoint and ends with the weights
of an uninterrupted run: the checkpoint holds the whole slimmable network (the demo config, made
small: 2 epochs of 6 steps)."""

import pytest

from tests.train.helpers import (fingerprint_line, kill_after_first_checkpoint, metrics,
                                 popen_module, run_module)

STEPS = 12


def _args(data_dir, model_dir):
    return ["--flagfile=configs/mutualnet/demo.flags", f"--data_dir={data_dir}",
            f"--model_dir={model_dir}", "--epochs=2", f"--steps_per_epoch={STEPS // 2}",
            "--batch_size=16", "--image_size=32", "--resolutions=32,24", "--eval_steps=2",
            "--eval_crop_fraction=1.0", "--checkpoint_every=2", "--noquery", "--noprogress"]


@pytest.mark.slow  # three training runs: about 2-3 minutes on 2 cores
def test_killed_mutualnet_run_resumes_to_the_uninterrupted_weights(tmp_path):
    data = tmp_path / "demo_data"
    reference = run_module("train.mutualnet", _args(data, tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert fingerprint_line(reference.stdout).startswith(f"global_step={STEPS} ")

    model_dir = tmp_path / "killed"
    killed_at = kill_after_first_checkpoint(popen_module("train.mutualnet", _args(data, model_dir)),
                                            model_dir)
    assert 0 < killed_at < STEPS

    resumed = run_module("train.mutualnet", _args(data, model_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step {killed_at}" in resumed.stdout
    assert fingerprint_line(resumed.stdout) == fingerprint_line(reference.stdout)
    assert metrics(model_dir)[-1]["val_top1"] == metrics(tmp_path / "reference")[-1]["val_top1"]
