"""The docs cannot rot: every fenced block in README.md and docs/ is tagged `run`, `registry` or `illustrative`
(the word after the language: ```` ```sh run ````). `run` blocks are executed here — each `$ ` line, or every line
of a block without one — after one run has made a history to read; `registry` blocks need the package
registries (the README's quick start, which .ci/run itself executes; installs with pip); `illustrative` blocks show output, settings or commands that
need what a test machine lacks (Docker, a collector, the user's own files)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.netjail import Netjail, netjail_executable

pytestmark = pytest.mark.nonroot

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TAGS = ("run", "registry", "illustrative")
FENCE = re.compile(r"^```(.*)$")
RUN_BLOCKS = 6  # how many `run` blocks the docs hold now: a block that loses its tag must not go unnoticed


def blocks() -> list[tuple[str, int, str, list[str]]]:
    """(file, line, tag, body) of every fenced block."""
    found = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            if (opening := FENCE.match(lines[i])) is not None:
                end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
                words = opening.group(1).split()
                tag = words[-1] if words else ""
                found.append((str(path.relative_to(REPO)), i + 1, tag, lines[i + 1 : end]))
                i = end + 1
            else:
                i += 1
    return found


def commands(body: list[str]) -> list[str]:
    prompted = [line[2:] for line in body if line.startswith("$ ")]
    if prompted:
        return prompted
    return [line for line in body if line.strip() and not line.lstrip().startswith("#")]


def test_every_block_is_tagged() -> None:
    untagged = [f"{file}:{line}" for file, line, tag, _ in blocks() if tag not in TAGS]
    assert untagged == [], f"tag these blocks run, registry or illustrative: {untagged}"


def test_the_run_blocks_run(netjail: Netjail, tmp_path: Path) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    first = netjail.run(
        "-s", str(cfg), "-c", "curl -sS --max-time 5 -o /dev/null http://denied.test:1/; true"
    )
    assert first.run_dir is not None, first.explain()
    bin_dir = str(Path(netjail_executable()).parent)
    env = {**netjail.env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    ran = 0
    for file, line, tag, body in blocks():
        if tag != "run":
            continue
        for command in commands(body):
            done = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"{file}:{line}: {command}\n{done.stderr[-2000:]}"
        ran += 1
    assert ran == RUN_BLOCKS


def test_whole_settings_files_in_the_docs_load(tmp_path: Path) -> None:
    """The recipes are settings files a reader will copy: each `json` block of docs/recipes.md must load (other
    pages' examples name files of an imagined machine, such as a corporate CA)."""
    import json

    from netjail.settings import load_settings

    checked = 0
    for file, _line, _, body in blocks():
        if file != "docs/recipes.md":
            continue
        text = "\n".join(body)
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and {"network", "filesystem"} <= data.keys():
            path = tmp_path / f"block-{checked}.json"
            path.write_text(text)
            load_settings(path)  # raises SettingsError naming the field
            checked += 1
    assert checked == 5
