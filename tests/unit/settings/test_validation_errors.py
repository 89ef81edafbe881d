"""pydantic's errors in words: the JSON path of the field, 'did you mean', the expected type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .settings_files import case, minimal, refused

REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, data, field, words in the message)
    (
        "unknown key",
        case("network.alowedDomains", []),
        "network.alowedDomains",
        'did you mean "allowedDomains"?',
    ),
    ("unknown top key", {**minimal(), "allowPTY": True}, "allowPTY", 'did you mean "allowPty"?'),
    (
        "snake case",
        case("network.allowed_domains", []),
        "network.allowed_domains",
        'did you mean "allowedDomains"',
    ),
    (
        "unknown far key",
        case("network.qqq", 1),
        "network.qqq",
        "remove it (docs/srt-compat.md lists the keys)",
    ),
    (
        "missing",
        {"network": {"allowedDomains": []}, "filesystem": minimal()["filesystem"]},
        "network.deniedDomains",
        'add "deniedDomains": []',
    ),
    ("missing section", {"network": minimal()["network"]}, "filesystem", 'add "filesystem": {}'),
    ("wrong type bool", case("allowPty", "yes"), "allowPty", "must be true or false, not a string"),
    ("bool as number", case("allowPty", 1), "allowPty", "must be true or false, not a number"),
    (
        "int as string",
        case("mandatoryDenySearchDepth", "3"),
        "mandatoryDenySearchDepth",
        "must be a whole number",
    ),
    (
        "out of range",
        case("mandatoryDenySearchDepth", 11),
        "mandatoryDenySearchDepth",
        "less than or equal to 10",
    ),
    (
        "list as string",
        case("network.allowedDomains", "example.com"),
        "network.allowedDomains",
        "must be an array",
    ),
    ("object as list", case("network", []), "network", "must be an object, not an array"),
    (
        "credential key",
        case("credentials", {"envVars": [{"name": "X", "mode": "deny", "Extract": "(x)"}]}),
        "credentials.envVars[0].Extract",
        'did you mean "extract"',
    ),
]


@pytest.mark.parametrize(("data", "field", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals(tmp_path: Path, data: dict[str, Any], field: str, words: str) -> None:
    error = refused(tmp_path, data)
    assert error.field == field, str(error)
    assert words in str(error), str(error)


def test_hostile_key_cannot_break_the_message(tmp_path: Path) -> None:
    error = refused(tmp_path, case("network.a\nb\x1b[31m", 1))
    assert error.field == 'network["a\\nb\\u001b[31m"]'
    assert "\x1b" not in str(error) and "\n" not in str(error)
