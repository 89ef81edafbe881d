"""Reading a run's flows.jsonl: streamed line by line, so a run of any size reads in bounded memory."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def iter_records(path: Path) -> Iterator[dict]:
    try:
        f = path.open(encoding="utf-8", errors="replace")
    except OSError:
        return
    with f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def safe_text(value: object) -> str:
    """A value from a record, fit for a terminal: control and bidi characters shown escaped, never obeyed."""
    return _UNSAFE.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
        str(value),
    )
