"""The README's Python and shell blocks run as written.

Each ```python block runs alone in a fresh interpreter (a reader copies one block, not the page)
and each ```bash block in `bash -e`, both in an empty temporary directory with the repository on
the path. A block that needs what a test cannot have (ImageNet, a GPU, a server, minutes of
training) is marked on the line before it with `<!-- readme: not run (REASON) -->`, so skipping is
explicit; an unmarked block that is not Python or shell (JSON, text) is not code to run.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"^<!-- readme: not run \((.+)\) -->$")
LANGUAGES = ("python", "bash")


def readme_blocks(text):
    """(first line number, language, code, reason not run or None) of every fenced block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match or not match.group(1):
            i += 1
            continue
        start, language = i + 1, match.group(1)
        end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
        marker = NOT_RUN.match(lines[i - 1].strip()) if i else None
        blocks.append((start + 1, language, "\n".join(lines[start:end]),
                       marker.group(1) if marker else None))
        i = end + 1
    return blocks


BLOCKS = readme_blocks((REPO / "README.md").read_text())
RUN = [b for b in BLOCKS if b[1] in LANGUAGES and b[3] is None]


def test_every_code_block_is_run_or_says_why_not():
    assert RUN, "no runnable block found"
    for line, language, _, reason in BLOCKS:
        assert language in LANGUAGES + ("json", "text"), f"README line {line}: {language!r}"
        if reason is not None:
            assert language in LANGUAGES and len(reason) > 10, f"README line {line}: {reason!r}"


def test_block_parser_reads_markers():
    text = "a\n<!-- readme: not run (needs ImageNet data) -->\n```bash\nls /data\n```\n" \
           "```python\nprint(1)\n```\n"
    assert readme_blocks(text) == [(4, "bash", "ls /data", "needs ImageNet data"),
                                   (7, "python", "print(1)", None)]


@pytest.mark.parametrize("line,language,code", [(b[0], b[1], b[2]) for b in RUN],
                         ids=[f"line{b[0]}" for b in RUN])
def test_readme_block_runs(line, language, code, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = [sys.executable, "-c", code] if language == "python" else ["bash", "-e", "-c", code]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"README line {line}:\n{code}\n---\n{proc.stderr[-3000:]}"
