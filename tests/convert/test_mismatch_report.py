"""A checkpoint of another architecture: a short summary naming the one it fits, every name in
the report file when asked, status 1 and no model written; the fitting one still converts."""

import numpy as np
import pytest

from bl_keras import convert
from bl_keras.convert import cli
from bl_keras.convert.mismatch import MAX_LINE, CheckpointMismatchError
from tests.convert.helpers import import_torch, save_checkpoint

torch = import_torch()

from tests.convert import torch_reference  # noqa: E402  (needs torch)


def torch_names(name):
    with torch.device("meta"):
        model = torch_reference.build(name)
    return [k for k in model.state_dict() if not k.endswith(".num_batches_tracked")]


@pytest.fixture(scope="module")
def bl_resnet101(tmp_path_factory):
    """A bL-ResNet-101 (PyTorch initialisation) saved as released, and its state dict."""
    torch.manual_seed(0)
    state_dict = torch_reference.build("bl_resnet101").state_dict()
    path = tmp_path_factory.mktemp("ckpt") / "ImageNet-bLResNet-101-a2-b4.pth.tar"
    save_checkpoint(torch, state_dict, path)
    return path, {k: v.numpy() for k, v in state_dict.items()}


# bL-ResNet-50 is bL-ResNet-101 with fewer blocks: the 101's extra ones are unexpected.
EXTRA = sorted(set(torch_names("bl_resnet101")) - set(torch_names("bl_resnet50")))


def convert_as_bl_resnet50(checkpoint, out, *extra):
    return cli.main(["--checkpoint", str(checkpoint), "--arch", "bl_resnet50",
                     "--output", str(out / "model.keras"), "--saved_model", str(out / "serving"),
                     *map(str, extra)])


def test_summary_names_the_fitting_architecture(bl_resnet101, tmp_path, capsys):
    status = convert_as_bl_resnet50(bl_resnet101[0], tmp_path)
    assert status == 1
    error = capsys.readouterr().err
    assert len(EXTRA) == 285
    assert ("Checkpoint does not match the architecture: the model takes 357 tensors, the "
            "checkpoint has 642 (BatchNorm counters aside)\n"
            "  unexpected (285): layer1.big.2.conv1.weight\n"
            "                    layer1.big.2.bn1.weight\n") in error
    assert "                    (280 more)\n" in error
    assert "missing (" not in error and "mis-shaped (" not in error
    assert ("Fits this checkpoint exactly:\n"
            "  bl_resnet101 with alpha=2, beta=4 (--arch bl_resnet101_a2_b4)\n"
            "For the full lists, rerun with --mismatch_report PATH.\n") in error
    # 11 lines where the list was once one line of ~11,000 characters.
    lines = error.splitlines()
    assert len(lines) == 11
    assert max(len(line) for line in lines[1:]) <= MAX_LINE
    assert list(tmp_path.iterdir()) == []


def test_report_file_holds_every_name(bl_resnet101, tmp_path, capsys):
    report = tmp_path / "reports" / "mismatch.txt"
    out = tmp_path / "out"
    assert convert_as_bl_resnet50(bl_resnet101[0], out, "--mismatch_report", report) == 1
    assert f"The full lists are in {report}." in capsys.readouterr().err
    listed = [line.split(":")[-1].strip() for line in report.read_text().splitlines()
              if line.startswith("   ") or line.startswith("  unexpected")]
    assert sorted(listed) == EXTRA
    assert "bl_resnet101 with alpha=2, beta=4" in report.read_text()
    assert not out.exists()


def test_python_api_raises_with_the_suggestion_and_the_report(bl_resnet101, tmp_path):
    report = tmp_path / "mismatch.txt"
    with pytest.raises(CheckpointMismatchError) as err:
        convert.from_checkpoint("bl_resnet50", bl_resnet101[0], mismatch_report=report)
    assert sorted(err.value.unexpected) == EXTRA
    assert (err.value.missing, err.value.mismatched) == ([], [])
    assert [c.arch for c in err.value.suggestion.exact] == ["bl_resnet101_a2_b4"]
    assert len(report.read_text().splitlines()) == 1 + 285 + 2


def test_unwritable_report_keeps_the_mismatch_error(bl_resnet101, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CheckpointMismatchError, match="Could not write the full lists to "):
        convert.from_official("bl_resnet50", bl_resnet101[1],
                              mismatch_report=blocker / "report.txt")


def test_the_suggested_architecture_converts(bl_resnet101, tmp_path):
    _, state_dict = bl_resnet101
    report = tmp_path / "mismatch.txt"
    model = convert.from_official("bl_resnet101", state_dict, mismatch_report=report)
    kernel = model.get_layer("layer3").big.blocks[16].conv2.conv.kernel.numpy()
    np.testing.assert_array_equal(
        kernel, np.transpose(state_dict["layer3.big.16.conv2.weight"], (2, 3, 1, 0)))
    assert not report.exists()


def test_summary_lines_are_bounded_and_the_report_is_whole(tmp_path):
    long_name = "encoder." + "very_long_module_name." * 10 + "weight"
    error = CheckpointMismatchError(
        missing=[f"layer{i}.conv.weight" for i in range(40)], unexpected=[long_name],
        mismatched=[(long_name, (3, 3), (4, 4))])
    summary = str(error)
    assert max(len(line) for line in summary.splitlines()) == MAX_LINE
    assert "  missing (40): layer0.conv.weight\n" in summary
    assert "(35 more)" in summary
    assert summary.endswith("(command line: --mismatch_report PATH).")
    error.write_report(tmp_path / "report.txt")
    report = (tmp_path / "report.txt").read_text()
    assert all(f"layer{i}.conv.weight\n" in report for i in range(40))
    assert f"{long_name} (3, 3) (expected (4, 4))\n" in report
