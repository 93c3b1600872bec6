"""`python -m bl_keras.convert` command-line handling that needs no checkpoint (nor torch)."""

import pytest

from bl_keras.convert import cli


def test_unknown_arch_is_one_line_with_valid_names(capsys, tmp_path):
    status = cli.main(["--checkpoint", "x.pth", "--arch", "bl_resnet51",
                       "--output", str(tmp_path / "m.keras")])
    assert status == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "unknown --arch 'bl_resnet51'; valid names: bl_resnet101, bl_resnet152, bl_resnet50," \
        in error
    assert list(tmp_path.iterdir()) == []


def test_unreadable_checkpoint_fails_with_status_1(capsys, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    status = cli.main(["--checkpoint", str(bad), "--arch", "bl_resnet50",
                       "--output", str(tmp_path / "m.keras")])
    assert status == 1
    assert f"cannot read checkpoint {bad}: not a PyTorch checkpoint" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["bad.pth"]


@pytest.mark.parametrize("arch, alpha, beta, expected", [
    ("bl_resnet50", None, None, ("bl_resnet50", {"alpha": 2, "beta": 4})),
    ("bl_resnext50_32x4d", 4, 2, ("bl_resnext50_32x4d", {"alpha": 4, "beta": 2})),
    ("bl_seresnext101_32x4d_a2_b4", None, 4, ("bl_seresnext101_32x4d", {"alpha": 2, "beta": 4})),
    ("resnet50", None, None, ("resnet50", {})),
])
def test_arch_names(arch, alpha, beta, expected):
    assert cli.resolve_arch(arch, alpha, beta) == expected


@pytest.mark.parametrize("arch, alpha, beta, message", [
    ("bl_resnet50_a2_b4", 4, None, "--alpha=4 contradicts --arch bl_resnet50_a2_b4"),
    ("resnet50", 2, None, "--alpha / --beta apply to bL models only"),
    ("speech.bl_resnet22", None, None, "unknown --arch 'speech.bl_resnet22'"),
])
def test_bad_arch_options(arch, alpha, beta, message):
    with pytest.raises(cli.UsageError, match=message):
        cli.resolve_arch(arch, alpha, beta)


def test_output_must_be_a_keras_file(capsys):
    status = cli.main(["--checkpoint", "x.pth", "--arch", "bl_resnet50", "--output", "m.h5"])
    assert status == 2
    assert "--output must end in .keras" in capsys.readouterr().err


@pytest.mark.parametrize("existing", ["output", "saved_model"])
def test_existing_outputs_are_refused_before_reading_unless_overwrite(capsys, tmp_path,
                                                                      existing):
    output, saved = tmp_path / "m.keras", tmp_path / "serving"
    if existing == "output":
        output.write_bytes(b"a converted model")
    else:
        saved.mkdir()
        (saved / "saved_model.pb").write_bytes(b"a deployed model")
    args = ["--checkpoint", str(tmp_path / "missing.pth"), "--arch", "bl_resnet50",
            "--output", str(output), "--saved_model", str(saved)]
    assert cli.main(args) == 2
    error = capsys.readouterr().err
    assert f"--{existing}" in error and "pass --overwrite to replace it" in error
    # With --overwrite the outputs are accepted and the missing checkpoint is what fails.
    assert cli.main(args + ["--overwrite"]) == 1
    assert "missing.pth" in capsys.readouterr().err
    assert output.exists() == (existing == "output") and saved.exists() == (existing != "output")
