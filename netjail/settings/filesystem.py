"""srt's `filesystem` block: what the command may read and write."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema, field_validator

from netjail.settings.errors import Problem, json_type
from netjail.settings.fields import SettingsModel, _check_path, refuse_when_true
from netjail.utils.text import quoted


class LiteralPath(str):
    """srt 0.0.81's `{"path": ..., "literal": true}`: the path it names and never a pattern, whether or not it
    exists (jail/paths.py matches no glob for it)."""

    literal = True


def _fs_entry(value: object) -> str:
    if isinstance(value, dict):
        if set(value) != {"path", "literal"} or value.get("literal") is not True:
            raise Problem(
                'an object entry must be exactly {"path": ..., "literal": true} (as in srt)',
                'write the path as a string, or as {"path": "/work/*.env", "literal": true} to name it literally',
            )
        path = value["path"]
        if not isinstance(path, str):
            raise Problem(
                f"path must be a string, not {json_type(path)}", 'e.g. {"path": "~/.ssh", "literal": true}'
            )
        return LiteralPath(_check_path(path))
    if not isinstance(value, str):
        raise Problem(
            f"must be a string or a literal path object, not {json_type(value)}",
            'write e.g. "~/.ssh" or {"path": "~/.ssh", "literal": true}',
        )
    return _check_path(value)


def _serialize_entry(value: str) -> Any:
    return {"path": str(value), "literal": True} if isinstance(value, LiteralPath) else value


# A path, glob or srt's literal path object: the four filesystem lists.
FsEntry = Annotated[
    str,
    PlainValidator(_fs_entry),
    PlainSerializer(_serialize_entry),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "object",
                    "properties": {"path": {"type": "string", "minLength": 1}, "literal": {"const": True}},
                    "required": ["path", "literal"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


def inert_deny_glob(value: str) -> Problem | None:
    """srt's rule: a rooted deny glob ending in '/' matches nothing, so it would deny nothing (fail open)."""
    if isinstance(value, LiteralPath) or not value.endswith("/") or not any(c in value for c in "*?[]"):
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
    deny_read: list[FsEntry]
    allow_read: list[FsEntry] = []
    allow_write: list[FsEntry]
    deny_write: list[FsEntry]
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
