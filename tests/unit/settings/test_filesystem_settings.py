"""The filesystem block: srt's rules on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .settings_files import case, refused

REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, data, field, words in the message)
    ("inert glob", case("filesystem.denyRead", ["/data/*/"]), "filesystem.denyRead[0]", 'write "/data/*"'),
    # refused srt keys
    (
        "disabled",
        case("filesystem.disabled", True),
        "filesystem.disabled",
        "always enforces the filesystem rules",
    ),
]


@pytest.mark.parametrize(("data", "field", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals(tmp_path: Path, data: dict[str, Any], field: str, words: str) -> None:
    error = refused(tmp_path, data)
    assert error.field == field, str(error)
    assert words in str(error), str(error)
