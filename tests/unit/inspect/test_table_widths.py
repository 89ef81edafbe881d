"""Tables fit the terminal they are drawn on, and piped text is not padded to its longest value."""

from __future__ import annotations

import io
import re

import pytest

from netjail.inspect.flows import COLUMNS, flow_row
from netjail.inspect.tables import PLAIN_PAD, Column, Output

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RECORD = {
    "event": "flow", "ts": "2026-12-02T04:00:00.000Z", "verdict": "deny", "method": "POST",
    "host": "a-rather-long-host-name.subdomain.example.test", "port": 443, "scheme": "https",
    "path": "/v1/projects/1234/locations/europe-west1/jobs?page=2", "status": 403, "bytes_out": 0,
    "bytes_in": 180, "reason": "not_allowed", "flags": [],
}  # fmt: skip


@pytest.mark.parametrize("width", [80, 100, 200])
def test_the_flows_table_fits_the_terminal(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    stream = io.StringIO()
    out = Output(stream, terminal=True)
    table = out.stream_table(COLUMNS)
    table.add(flow_row(RECORD, human=True))  # type: ignore[arg-type]
    table.close()
    lines = [ANSI.sub("", line) for line in stream.getvalue().splitlines()]
    assert lines and all(len(line) <= width for line in lines), lines
    assert "deny" in lines[-1] and "403" in lines[-1]


def test_piped_text_is_not_padded_to_the_longest_value() -> None:
    stream = io.StringIO()
    columns = [Column("run"), Column("command"), Column("exit", justify="right")]
    rows = [["r1", "true", "0"], ["r2", "x" * 300, "1"], ["r3", "make", "2"]]
    Output(stream, terminal=False).table(columns, rows)
    lines = stream.getvalue().splitlines()
    assert len(lines[1]) == len("run") + 2 + PLAIN_PAD + 2 + len("exit") and lines[1].endswith("0")
    assert "x" * 300 in lines[2]  # nothing is cut; the long value pushes its own row out
