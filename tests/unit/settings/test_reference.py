"""docs/settings.md is what `python -m netjail.settings --reference` prints: every key, its type, default, origin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from netjail.settings.reference import render_reference
from netjail.settings.srt_keys import SRT_KEYS

REPO = Path(__file__).resolve().parents[3]


def test_the_reference_page_is_current() -> None:
    page = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    assert page == render_reference(), (
        "run: .venv/bin/python -m netjail.settings --reference > docs/settings.md"
    )


def test_every_srt_key_of_the_schema_has_its_verdict_on_the_page() -> None:
    page = render_reference()
    for verdict in SRT_KEYS:
        if f"| `{verdict.path}` |" in page:
            assert (
                f"| srt, {verdict.verdict} |" in page.split(f"| `{verdict.path}` |", 1)[1].split("\n", 1)[0]
            )


def test_the_command_prints_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "netjail.settings", "--reference"], capture_output=True, text=True, check=True
    )
    assert done.stdout == render_reference()
