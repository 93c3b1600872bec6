"""Trainer runs as child processes: what studies and multi-stage recipes (BlockDrop's backbone,
curriculum and fine-tuning) are made of. Each child is an ordinary entry-point run with its own
--model_dir, so a killed parent, started again, resumes the unfinished child from its last
checkpoint and the finished ones report themselves complete.
"""

import subprocess
import sys

# Lines of a child's output worth showing in the parent's (the rest goes to its log file).
SHOWN = ("{", "already complete", "Training ", "Resumed ", "error", "Query table")


def run_entry_point(module, args, log_path, label, echo=print):
    """Run `python -m module *args`, appending its output to `log_path` and echoing the
    `SHOWN` lines prefixed by [label]; raises `RuntimeError` naming the log when it fails."""
    command = [sys.executable, "-m", module, *args]
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, bufsize=1)
        for line in child.stdout:
            log.write(line)
            if line.startswith(SHOWN):
                echo(f"[{label}] {line.rstrip()[:200]}")
        status = child.wait()
    if status:
        raise RuntimeError(f"{label} failed (exit status {status}); see {log_path}")


def run_stage(name, module, args, model_dir):
    """One stage of a pipeline: `python -m module *args` as an ordinary run in `model_dir`
    (its log there), announced and echoed on stdout."""
    import os

    print(f"== {name} ==", flush=True)
    run_entry_point(module, [*args, f"--model_dir={model_dir}", "--noprogress"],
                    os.path.join(model_dir, "train.log"), name,
                    echo=lambda line: print(line, flush=True))


def pipeline_status(pipeline):
    """Run `pipeline()`; a failed stage is one line on stderr and exit status 1."""
    try:
        return pipeline()
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
