"""pydantic's ValidationError in words: the field at fault as a JSON path (network.allowedDomains[2],
network.hosts["x"]), and a problem and a fix a person can act on."""

from __future__ import annotations

import difflib
import json
import re
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from netjail.net.domains import PatternError
from netjail.settings.errors import Problem, SettingsError, json_type, split_sentence
from netjail.settings.fields import ENV_NAME_REGEX, GUID_REGEX, HEADER_NAME_REGEX, field_for_alias
from netjail.settings.models import Settings
from netjail.utils.text import quoted

_EXPECTED = {
    "string_type": ("a string", 'write it in double quotes, e.g. "example"'),
    "list_type": ("an array", 'write a JSON array, e.g. [] or ["example"]'),
    "tuple_type": ("an array", "write a JSON array"),
    "bool_type": ("true or false", "write true or false, without quotes"),
    "int_type": ("a whole number", "write a whole number, without quotes"),
    "int_from_float": ("a whole number", "write a whole number, without a fraction"),
    "dict_type": ("an object", "write a JSON object, e.g. {}"),
    "model_type": ("an object", "write a JSON object, e.g. {}"),
    "model_attributes_type": ("an object", "write a JSON object, e.g. {}"),
}


def render_path(loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None]:
    """pydantic's loc -> a JSON path (network.allowedDomains[2], network.hosts["x"]) and the model that
    holds its last key (for "did you mean")."""
    out = ""
    tp: Any = Settings
    parent: type[BaseModel] | None = Settings
    for segment in loc:
        tp = _unwrap(tp)
        if isinstance(segment, int):
            out += f"[{segment}]"
            args = get_args(tp)
            tp = args[0] if args else None
            continue
        if segment == "[key]":  # pydantic's marker for "the key itself": not part of the JSON path
            continue
        if get_origin(tp) is dict:
            out += f"[{json.dumps(segment)}]"
            tp = get_args(tp)[1]
            continue
        hit = None
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            parent, hit = tp, field_for_alias(tp, segment)
        ident = re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_]*", segment) is not None
        out += (f".{segment}" if out else segment) if ident else f"[{json.dumps(segment)}]"
        tp = hit[1] if hit else None
    return out or "(file)", parent


def _unwrap(tp: Any) -> Any:
    """Strip Annotated[...] and `X | None` down to the type that shapes the JSON."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        args = get_args(tp)
        if args and type(None) in args and len(args) == 2:
            tp = next(a for a in args if a is not type(None))
            continue
        return tp


def _known_keys(model: type[BaseModel] | None) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()] if model else []


def _describe(error: Any, parent: type[BaseModel] | None) -> tuple[str, str]:
    """A pydantic error in words: (problem, fix)."""
    kind, loc, value = error["type"], error["loc"], error.get("input")
    ctx = error.get("ctx") or {}
    name = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        known = _known_keys(parent)
        folded = {re.sub(r"[_\-]", "", k).lower(): k for k in known}  # allowed_domains -> allowedDomains
        guess = folded.get(re.sub(r"[_\-]", "", name).lower())
        guess = guess or next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.75)), None)
        fix = (
            f"did you mean {json.dumps(guess)}?" if guess else "remove it (docs/srt-compat.md lists the keys)"
        )
        return f"unknown key {quoted(name)} (known to neither srt nor netjail)", fix
    if kind == "missing":
        hit = field_for_alias(parent, name) if parent else None
        shape = _unwrap(hit[1]) if hit else None
        is_model = isinstance(shape, type) and issubclass(shape, BaseModel)
        example = ": []" if get_origin(shape) is list else ": {}" if is_model else ""
        return "this key is required (srt requires it too)", f'add "{name}"{example}'
    if kind in _EXPECTED:
        noun, fix = _EXPECTED[kind]
        return f"must be {noun}, not {json_type(value)}", fix
    if kind == "literal_error":
        return f"{quoted(value)} is not allowed here", f"use {ctx['expected']}"
    pattern = ctx.get("pattern", "")
    if kind == "string_pattern_mismatch" and pattern == ENV_NAME_REGEX:
        return (
            f"{quoted(value)} is not an environment variable name",
            "use letters, digits and '_', not a leading digit",
        )
    if kind == "string_pattern_mismatch" and pattern == HEADER_NAME_REGEX:
        return f"{quoted(value)} is not an HTTP header name", "write the bare header name, e.g. authorization"
    if kind == "string_pattern_mismatch" and pattern == GUID_REGEX:
        return (
            f"{quoted(value)} is not a GUID",
            "write it as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)",
        )
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty", "give a value, or remove the key"
    msg = error["msg"]
    if kind.startswith(("greater_than", "less_than", "too_", "string_too_")):
        return (
            f"{quoted(value)} is out of range: {msg[:1].lower()}{msg[1:]}",
            "use a value in the allowed range",
        )
    return msg, "see docs/srt-compat.md and docs/settings.schema.json"


def to_settings_error(file: str, exc: ValidationError, remap: dict[int, int]) -> SettingsError:
    """Every problem of the file, in its order, each once."""
    errors = exc.errors(include_url=False)
    # A misspelt key usually also makes a required key beside it "missing": the unknown key is the useful report.
    misspelt_in = {tuple(e["loc"][:-1]) for e in errors if e["type"] == "extra_forbidden"}
    reported: list[SettingsError] = []
    seen: set[tuple[str, str]] = set()
    for error in errors:
        if error["type"] == "missing" and tuple(error["loc"][:-1]) in misspelt_in:
            continue
        one = _one_error(file, error, remap)
        if (one.field, one.problem) not in seen:
            seen.add((one.field, one.problem))
            reported.append(one)
    return SettingsError.every(reported or [_one_error(file, errors[0], remap)])


def _one_error(file: str, error: Any, remap: dict[int, int]) -> SettingsError:
    loc = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, Problem):
        loc += cause.at
        problem, fix = cause.problem, cause.fix
    elif isinstance(cause, PatternError):
        problem, fix = split_sentence(str(cause))
    else:
        problem = fix = ""
    if loc[:2] == ("network", "allowedDomains") and len(loc) > 2 and isinstance(loc[2], int):
        loc = (*loc[:2], remap.get(loc[2], loc[2]), *loc[3:])  # index in the file, before preset expansion
    path, parent = render_path(loc)
    if not problem:
        problem, fix = _describe(error, parent)
    return SettingsError(file, path, problem, fix)
