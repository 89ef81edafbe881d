"""SBPL text: string literals, regular expressions and path filters that mean exactly what netjail asks of them.

A value that cannot be written without changing what the rule matches is refused (`SbplError`) for an allow, and
widened for a deny: a deny may match more than asked, never less.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

# sandbox-exec refuses a string literal longer than about 1025 bytes ("Error reading string"), and one bad
# string invalidates the whole profile. Longer paths are refused (allows) or widened to a prefix (denies).
MAX_STRING_BYTES = 1000


class SbplError(ValueError):
    """A value that cannot be written into a profile without changing its meaning."""


def _control_chars(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) == "Cc"]


def sbpl_string(text: str) -> str:
    """`text` as an SBPL string literal: backslash and double quote escaped, everything else as is (non-ASCII as
    UTF-8). Control characters (NUL, newline, tab, escape, …) are refused: SBPL's reader has no escape for most of
    them and a raw one would change what the rule matches, or what a reviewer sees."""
    bad = _control_chars(text)
    if bad:
        raise SbplError(f"{text!r} contains a control character ({bad[0]!r}), which a profile cannot hold")
    if len(text.encode()) > MAX_STRING_BYTES:
        raise SbplError(
            f"{text[:60]!r}… is longer than {MAX_STRING_BYTES} bytes, which sandbox-exec cannot read"
        )
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sbpl_comment(text: str) -> str:
    """Text safe to put after `;`: a control character (a newline would end the comment) is shown escaped."""
    return "".join(
        ch.encode("unicode_escape").decode() if unicodedata.category(ch) == "Cc" else ch for ch in text
    )


_REGEX_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def regex_literal(text: str) -> str:
    """`text` as a regular expression matching exactly itself."""
    return _REGEX_SPECIAL.sub(r"\\\1", text)


def regex_any_case(text: str) -> str:
    """`text` as a regular expression matching itself in any ASCII case: macOS volumes are case-insensitive by
    default, so a file created as `.BASHRC` is the `.bashrc` bash reads, and a name that does not exist yet is
    compared as the command spells it."""
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.isascii() and c.isalpha() else regex_literal(c) for c in text
    )


def _fits(text: str) -> bool:
    return not _control_chars(text) and len(text.encode()) <= MAX_STRING_BYTES


def _spellings(path: str) -> list[str]:
    """The path, and its other Unicode normal form if it has one: a name may be stored on disk in either."""
    return list(dict.fromkeys([path, unicodedata.normalize("NFC", path), unicodedata.normalize("NFD", path)]))


def widened_regex(pattern_path: str, tail: str) -> str:
    """A regex for `pattern_path` + `tail` that can only match more: control characters become `.`, and a path
    too long for one string is cut to a prefix followed by `.*`."""
    return _widened_with(pattern_path, regex_literal, tail)


def _widened_with(pattern_path: str, literal: Any, tail: str) -> str:
    pieces = ["." if unicodedata.category(ch) == "Cc" else literal(ch) for ch in pattern_path]
    regex = f"^{''.join(pieces)}{tail}"
    if len(regex.encode()) <= MAX_STRING_BYTES:
        return regex
    room, kept = MAX_STRING_BYTES - len(tail.encode()) - 8, []
    for piece in pieces:  # whole characters only: a cut escape or class would change the regex
        room -= len(piece.encode())
        if room < 0:
            break
        kept.append(piece)
    return f"^{''.join(kept)}.*{tail}"


def allow_filters(kind: Literal["subpath", "literal"], path: str) -> list[str]:
    """Filters for an allow rule: exact, or an error (an allow is never widened)."""
    return [f"({kind} {sbpl_string(p)})" for p in _spellings(path)]


def deny_filters(kind: Literal["subpath", "literal"], path: str) -> list[str]:
    """Filters for a deny rule: exact when the path can be written as a string, else a regex that matches it and
    possibly more (a deny may widen, never narrow)."""
    filters = []
    for p in _spellings(path):
        if _fits(p):
            filters.append(f"({kind} {sbpl_string(p)})")
        else:
            tail = "(/.*)?$" if kind == "subpath" else "$"
            filters.append(f"(regex {sbpl_string(widened_regex(p, tail))})")
    return filters


def any_case_filter(path: str, subtree: bool = True) -> str:
    """A deny filter for `path` spelt in any case (see regex_any_case), for paths that may not exist yet."""
    tail = "(/.*)?$" if subtree else "$"
    return f"(regex {sbpl_string(_widened_with(path, regex_any_case, tail))})"
