"""`python -m netjail.settings --check FILE | --schema`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netjail.settings import json_schema

from .settings_files import case, save


def test_command_line_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from netjail.settings import main

    assert main(["--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()
    assert main(["--check", str(save(tmp_path, case("allowPty", "yes")))]) == 125
    assert "allowPty: must be true or false" in capsys.readouterr().err
    assert main(["--check", str(save(tmp_path, case("ripgrep", {"command": "rg"})))]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ripgrep"] == {"command": "rg"}
    assert captured.err == "warning: ripgrep: ignored: netjail finds the mandatory-deny files itself\n"
    assert main([]) == 2
