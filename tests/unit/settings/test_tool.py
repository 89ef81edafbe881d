"""`python -m netjail.settings --check FILE | --schema`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netjail.settings import json_schema, load_settings

from .settings_files import REPO, case, save


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


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """The tool as docs/srt-compat.md documents it, in its own interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "netjail.settings", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_python_m_schema_prints_the_committed_schema() -> None:
    done = run_tool("--schema")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (REPO / "docs" / "settings.schema.json").read_text()


def test_python_m_check_prints_the_effective_settings() -> None:
    example = REPO / "configs" / "example.json"
    done = run_tool("--check", str(example))
    assert done.returncode == 0, done.stderr
    assert done.stdout == load_settings(example).effective_json()
    effective = json.loads(done.stdout)
    assert {"example.com", "*.example.org"} <= set(effective["network"]["allowedDomains"])
    assert "@pip" not in done.stdout


def test_python_m_check_refuses_a_bad_file(tmp_path: Path) -> None:
    bad = save(tmp_path, case("network.alowedDomains", []), "bad-settings.json")
    done = run_tool("--check", str(bad))
    assert (done.returncode, done.stdout) == (125, "")
    assert done.stderr == (
        f"{bad}: network.alowedDomains: unknown key 'alowedDomains' (known to neither srt nor netjail)."
        ' Fix: did you mean "allowedDomains"?\n'
    )


def test_python_m_usage() -> None:
    done = run_tool()
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "usage: python -m netjail.settings --schema | --reference | --check FILE\n"
