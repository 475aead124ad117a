"""The Python examples in the docs run as written."""

from __future__ import annotations

import os
import re

from conftest import ROOT


def python_blocks(path: str) -> list[str]:
    text = (ROOT / path).read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_quick_start_runs_as_written(tmp_path, capsys) -> None:
    blocks = python_blocks("docs/python.md")
    assert blocks, "docs/python.md has a quick start"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(blocks[0], "docs/python.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert (tmp_path / "wallet.db").exists()
    assert "Decimal('12.34')" in capsys.readouterr().out


def test_the_readme_example_runs_as_written(tmp_path, capsys) -> None:
    blocks = python_blocks("README.md")
    assert len(blocks) == 1, "README.md has one Python example"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(blocks[0], "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "refused: conflict on provider_event_id" in out
    assert out.strip().endswith("12.34")
    assert (tmp_path / "wallet.db").exists()
