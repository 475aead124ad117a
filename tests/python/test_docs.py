"""The Python examples in the docs run as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import ROOT


def python_blocks(path: str) -> list[str]:
    text = (ROOT / path).read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def run_block(path: str, block: str, cwd: Path) -> None:
    """Runs one example as a script would, in the folder `cwd`."""
    before = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(block, path, "exec"), {})
    finally:
        os.chdir(before)


def test_the_quick_start_runs_as_written(tmp_path, capsys) -> None:
    blocks = python_blocks("docs/python.md")
    assert blocks, "docs/python.md has a quick start"
    for _ in range(2):  # a rerun finds its event already there
        run_block("docs/python.md", blocks[0], tmp_path)
        assert "Decimal('12.34')" in capsys.readouterr().out
    assert (tmp_path / "wallet.db").exists()


def test_the_readme_example_runs_as_written(tmp_path, capsys) -> None:
    blocks = python_blocks("README.md")
    assert len(blocks) == 1, "README.md has one Python example"
    # Twice in the same folder: the example can be run again, and it writes
    # nothing into the folder it runs in.
    for _ in range(2):
        run_block("README.md", blocks[0], tmp_path)
        out = capsys.readouterr().out
        assert "refused: conflict on provider_event_id" in out
        assert out.strip().endswith("12.34")
    assert list(tmp_path.iterdir()) == []
