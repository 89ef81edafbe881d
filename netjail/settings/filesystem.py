"""srt's `filesystem` block: what the command may read and write."""

from __future__ import annotations

from pydantic import field_validator

from netjail.settings.errors import Problem
from netjail.settings.fields import FsPath, SettingsModel, refuse_when_true
from netjail.utils.text import quoted


def inert_deny_glob(value: str) -> Problem | None:
    """srt's rule: a rooted deny glob ending in '/' matches nothing, so it would deny nothing (fail open)."""
    if not value.endswith("/") or not any(c in value for c in "*?[]"):
        return None
    if not value.startswith(("/", "~")):
        return None
    trimmed = value.rstrip("/")
    return Problem(
        f"the deny glob {quoted(value)} ends in '/', so it can match no path and would deny nothing",
        f'write "{trimmed}", or add a "**" segment to match at any depth',
    )


class FilesystemSettings(SettingsModel):
    disabled: bool = False
    deny_read: list[FsPath]
    allow_read: list[FsPath] = []
    allow_write: list[FsPath]
    deny_write: list[FsPath]
    allow_git_config: bool = False

    _refuse_disabled = field_validator("disabled")(
        refuse_when_true(
            "netjail always enforces the filesystem rules (and its mandatory write protections)",
            "remove disabled or set it to false; list what the command may write in allowWrite",
        )
    )

    @field_validator("deny_read", "deny_write")
    @classmethod
    def _no_inert_globs(cls, value: list[str]) -> list[str]:
        for index, entry in enumerate(value):
            if (problem := inert_deny_glob(entry)) is not None:
                problem.at = (index,)
                raise problem
        return value
