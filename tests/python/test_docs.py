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


def test_the_readme_examples_run_as_written(tmp_path, capsys) -> None:
    blocks = python_blocks("README.md")
    assert len(blocks) == 2, "README.md has two Python examples: the ledger, the router"
    # Twice in the same folder: the examples can be run again, and they write
    # nothing into the folder they run in. The router example goes on from
    # the first one (its `ledger_dir`), as a reader would.
    for _ in range(2):
        scope: dict = {}
        before = os.getcwd()
        os.chdir(tmp_path)
        try:
            exec(compile(blocks[0], "README.md", "exec"), scope)
            out = capsys.readouterr().out
            assert "refused: conflict on provider_event_id" in out
            assert out.strip().endswith("12.34")
            exec(compile(blocks[1], "README.md", "exec"), scope)
            routes = capsys.readouterr().out
            assert "/api/v1/wallets/{wallet_id}/events/ingest" in routes
            assert "/api/v1/webhooks/{provider}" in routes
        finally:
            os.chdir(before)
    assert list(tmp_path.iterdir()) == []
