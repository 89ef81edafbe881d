"""Reading a run's flows.jsonl: streamed line by line, so a run of any size reads in bounded memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

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
    """run_end's `counts`, from the records written so far. `incomplete`: flows started and never recorded (the
    proxy was killed meanwhile) or recorded as still under way; `dropped`: packets of other protocols the jail's
    network dropped (`dropped` records); `dns`, `dns_denied`: the jail resolver's lookups, and those refused."""
    counts: RunCounts = {
        "flows": 0, "allowed": 0, "denied": 0, "failed": 0, "incomplete": 0, "dropped": 0, "dns": 0, "dns_denied": 0,
    }  # fmt: skip
    started: set[str] = set()
    for record in iter_records(path):
        event = record.get("event")
        if event == "flow_start":
            started.add(str(record.get("id")))
        elif event == "dns":
            counts["dns"] += 1
            counts["dns_denied"] += 1 if record.get("verdict") == "deny" else 0
        elif event == "dropped":
            packets = record.get("packets")
            counts["dropped"] += packets if isinstance(packets, int) else 0
        elif is_flow(record):
            started.discard(str(record.get("id")))
            counts["incomplete"] += 1 if record.get("incomplete") else 0
            count_flow(counts, record)
    counts["incomplete"] += len(started)
    return counts
