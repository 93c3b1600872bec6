"""The package's command-line conventions: defaults in --help, no model replaced unasked."""

import argparse

import pytest

from bl_keras.command_line import HelpFormatter, check_can_write


def test_help_shows_defaults_once():
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="batch size")
    parser.add_argument("--classes", type=int, default=1000, help="classifier outputs")
    parser.add_argument("--models", default=None, help="names (default: every model)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    text = " ".join(parser.format_help().split())
    assert "batch size (default: 16)" in text and "outputs (default: 1000)" in text
    assert text.count("default") == 3  # --models states its own; flags and None say nothing


def test_existing_outputs_need_overwrite(tmp_path):
    check_can_write(tmp_path / "new", overwrite=False)            # a new path
    (tmp_path / "empty").mkdir()
    check_can_write(tmp_path / "empty", overwrite=False)          # an empty directory
    (tmp_path / "model.tflite").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="--output .*model.tflite: the file exists; pass "
                                              "--overwrite"):
        check_can_write(tmp_path / "model.tflite", overwrite=False)
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="--saved_model .*directory is not empty"):
        check_can_write(tmp_path / "saved", overwrite=False, flag="--saved_model")
    check_can_write(tmp_path / "saved", overwrite=True)
