"""Reading a run's flows.jsonl: streamed line by line, so a run of any size reads in bounded memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from netjail.records.derived import count_flow
from netjail.records.schema import Record, RunCounts, RunStart, is_flow, is_run_start


def iter_records(path: Path) -> Iterator[Record]:
    """Every line that is a JSON object, as it is (typed as netjail writes records; not validated)."""
    try:
        f = path.open(encoding="utf-8", errors="replace")
    except OSError:
        return
    with f:
        for line in f:
            try:
                record: Record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def first_run_start(path: Path) -> RunStart | None:
    """The run's `run_start`: its first record, if that is one."""
    for record in iter_records(path):
        return record if is_run_start(record) else None
    return None


def count_verdicts(path: Path) -> RunCounts:
    """run_end's `counts`, from the flow records written so far."""
    counts: RunCounts = {"flows": 0, "allowed": 0, "denied": 0, "failed": 0}
    for record in iter_records(path):
        if is_flow(record):
            count_flow(counts, record)
    return counts
