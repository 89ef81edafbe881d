"""Text from records, settings and the command, made fit for a terminal or a message: shown, never obeyed."""

from __future__ import annotations

import json
import re

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
SHOWN_CHARS = 80


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object) -> str:
    """A value from a record, fit for a terminal: control and bidi characters shown escaped, never obeyed."""
    text = str(value)
    if text.isascii() and text.isprintable():  # the common case, checked at C speed
        return text
    return _UNSAFE.sub(_escape, text)


def quoted(value: object) -> str:
    """A user's value quoted for an error message, cut to SHOWN_CHARS; repr() escapes control and bidi
    characters (log forging); non-strings are shown as JSON."""
    if not isinstance(value, str):
        return json.dumps(value)[:SHOWN_CHARS]
    return repr(value if len(value) <= SHOWN_CHARS else value[: SHOWN_CHARS - 3] + "...")


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
