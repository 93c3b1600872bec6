"""Native-kernel crashes become test failures that name the piece, not a dead test process.

A 4-channel bL speech model's training step once died in native code on an AMD Zen 4 CPU
(oneDNN kernels of TensorFlow 2.21; WORKSPACE_NOTES.md, "Native crashes on some CPUs").
`native_steps` runs the model's pieces one after another in a child process; a crash there is
reported with the piece that was running.
"""

import signal

from tests.train.helpers import run_module


def _crashed_piece(output):
    started = [line.split(" ", 1)[1] for line in output.splitlines() if line.startswith("start ")]
    done = {line.split(" ", 1)[1] for line in output.splitlines() if line.startswith("done ")}
    pending = [name for name in started if name not in done]
    return pending[-1] if pending else None


def _describe(returncode):
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


def test_four_channel_speech_pieces_train_without_native_crash():
    from tests.train.native_steps import PIECES

    proc = run_module("tests.train.native_steps", [], timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"training step of {_crashed_piece(proc.stdout)!r} failed ({_describe(proc.returncode)})"
        f":\n{output[-3000:]}")
    assert [line for line in proc.stdout.splitlines() if line.startswith("done ")] == [
        f"done {name}" for name in PIECES]


def test_crashed_piece_is_the_last_one_started():
    output = "start a\ndone a\nstart b\n"
    assert _crashed_piece(output) == "b"
    assert _crashed_piece("start a\ndone a\n") is None
    assert _describe(-6) == "killed by SIGABRT" and _describe(1) == "exit status 1"
