"""Finding the settings file and loading it: JSON parsed strictly (with `//` and `/* */` comments: JSONC),
"@preset" entries expanded, the models validated, the warnings for ignored srt keys collected. Loading has no side effect: it reads the file and,
for presets, the package managers' own configuration."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from netjail.net.domains import PatternError, parse_pattern
from netjail.settings.errors import Problem, SettingsError, json_type, split_sentence
from netjail.settings.models import Settings
from netjail.settings.presets import PresetError, expand_preset
from netjail.settings.srt_keys import collect_warnings
from netjail.utils.resources import bundled_config
from netjail.utils.text import quoted

Origin = Literal["flag", "env", "user", "bundled"]
BUNDLED_DEFAULT = bundled_config("default.json")


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    path: Path  # the file actually used
    origin: Origin
    warnings: tuple[str, ...] = ()  # one line each, for srt keys present in the file that netjail ignores
    expansions: dict[str, list[str]] = field(default_factory=dict)  # "@pip" -> hosts it expanded to

    def effective_json(self) -> str:
        """The settings in force (presets expanded, credential files in denyRead), by alias, indented."""
        return self.settings.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"


def find_settings_path(flag: Path | None, environ: Mapping[str, str] = os.environ) -> tuple[Path, Origin]:
    """-s FILE, else $NETJAIL_SETTINGS, else the user's file if it is there, else the bundled default."""
    if flag is not None:
        return flag, "flag"
    if explicit := environ.get("NETJAIL_SETTINGS"):
        return Path(explicit), "env"
    config_home = environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config_home):  # the XDG spec says to ignore a relative value
        config_home = str(Path(environ.get("HOME") or Path.home()) / ".config")
    user = Path(config_home) / "netjail" / "settings.json"
    # lexists: a file that is there but broken (dangling link, unreadable) is an error, never a silent
    # fall-back to different rules.
    if os.path.lexists(user):
        return user, "user"
    return BUNDLED_DEFAULT, "bundled"


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise Problem(f"the key {quoted(key)} appears twice in one object", "keep only one of them")
        seen[key] = value
    return seen


def _reject_constant(name: str) -> Any:
    raise Problem(f"{name} is not valid JSON", "write a number or remove the value")


def _first_null(value: Any, loc: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where the document holds a JSON null. srt (zod) takes null nowhere, and here it would silently
    mean "the default"."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = (*loc, key) if item is None else _first_null(item, (*loc, key))
        if found is not None:
            return found
    return None


# A string (closed or not), a line comment, a block comment, or the opening of one that never closes.
_JSONC_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|//[^\r\n]*|/\*.*?\*/|/\*', re.DOTALL)


def strip_comments(file: str, text: str) -> str:
    """JSONC: every `//` and `/* */` comment outside a string becomes spaces, its line breaks kept, so that a
    JSON error's line and column still point into the file as written. Trailing commas stay errors."""
    if "/" not in text:
        return text

    def blank(match: re.Match[str]) -> str:
        token = match.group()
        if token.startswith('"'):
            return token
        if token == "/*":
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            raise SettingsError(
                file,
                "(file)",
                f"a /* comment at line {line}, column {column} is never closed",
                "close it with */",
            )
        return re.sub(r"[^\r\n]", " ", token)

    return _JSONC_TOKEN.sub(blank, text)


def _parse_json(file: str, text: str) -> Any:
    text = strip_comments(file, text)
    if not text.strip():
        raise SettingsError(
            file, "(file)", "the file is empty", 'write a JSON object with "network" and "filesystem"'
        )
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            file,
            "(file)",
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            "correct the JSON syntax (double-quoted strings, no trailing commas; comments are // and /* */)",
        ) from None
    except Problem as exc:
        raise SettingsError(file, "(file)", exc.problem, exc.fix) from None


def _preset_host_problem(host: str) -> str | None:
    try:
        kind = parse_pattern(host).kind
    except PatternError as exc:
        return str(exc)
    return None if kind in ("exact", "ip") else "a preset may name only exact hosts and IP addresses"


def _expand_allowed(
    file: str, data: dict[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, list[str]], dict[int, int]]:
    """Replace "@preset" entries of network.allowedDomains by their hosts, before validation.

    Returns the new data, the expansions and a map from expanded index to the index in the file.
    """
    network = data.get("network")
    if not isinstance(network, dict):
        return data, {}, {}
    entries = network.get("allowedDomains")
    if not isinstance(entries, list) or not any(isinstance(e, str) and e.startswith("@") for e in entries):
        return data, {}, {}
    expanded: list[Any] = []
    remap: dict[int, int] = {}
    expansions: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        field_path = f"network.allowedDomains[{index}]"
        if not (isinstance(entry, str) and entry.startswith("@")):
            remap[len(expanded)] = index
            expanded.append(entry)
            continue
        if entry not in expansions:
            try:
                hosts = expand_preset(entry, environ)
            except PresetError as exc:
                problem, fix = split_sentence(str(exc))
                raise SettingsError(file, field_path, problem, fix) from None
            for host in hosts:
                if (why := _preset_host_problem(host)) is not None:
                    raise SettingsError(
                        file,
                        field_path,
                        f"preset {entry} produced {quoted(host)}, which is not a valid entry: {why}",
                        f"fix the URL in the package manager's configuration, or list hosts instead of {entry}",
                    )
            expansions[entry] = hosts
        for host in expansions[entry]:
            remap[len(expanded)] = index
            expanded.append(host)
    data = {**data, "network": {**network, "allowedDomains": expanded}}
    return data, expansions, remap


def _expand_rule_hosts(
    file: str, data: dict[str, Any], expansions: dict[str, list[str]], environ: Mapping[str, str]
) -> dict[str, Any]:
    """network.rules[].hosts may name a preset too ("@pip": the index hosts it allows): replaced by its hosts."""
    blocks = data.get("network", {}).get("rules") if isinstance(data.get("network"), dict) else None
    if not isinstance(blocks, list):
        return data
    for index, block in enumerate(blocks):
        hosts = block.get("hosts") if isinstance(block, dict) else None
        if not isinstance(hosts, list) or not any(isinstance(h, str) and h.startswith("@") for h in hosts):
            continue
        expanded: list[Any] = []
        for position, host in enumerate(hosts):
            if not (isinstance(host, str) and host.startswith("@")):
                expanded.append(host)
                continue
            if host not in expansions:
                try:
                    expansions[host] = expand_preset(host, environ)
                except PresetError as exc:
                    problem, fix = split_sentence(str(exc))
                    raise SettingsError(
                        file, f"network.rules[{index}].hosts[{position}]", problem, fix
                    ) from None
            expanded.extend(expansions[host])
        block["hosts"] = expanded
    return data


def read_json(path: Path) -> Any:
    """A settings file's text, parsed (comments allowed, duplicate keys and NaN refused). Raises SettingsError."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(
            file,
            "(file)",
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
            "save it as UTF-8",
        ) from None
    except OSError as exc:
        raise SettingsError(
            file,
            "(file)",
            f"cannot read the settings file ({exc.strerror or exc})",
            "check the path and its permissions, or pass another file with -s",
        ) from None
    return _parse_json(file, text)


def load_settings(
    path: Path, origin: Origin = "flag", *, environ: Mapping[str, str] = os.environ
) -> LoadedSettings:
    """Read and validate a settings file. Raises SettingsError; writes nothing, starts nothing but
    (for "@npm" only, when npm's files name no registry) `npm config get registry`."""
    file = str(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise SettingsError(
            file,
            "(file)",
            f"the file holds {json_type(data)}, not a JSON object",
            'wrap the settings in { } with "network" and "filesystem" keys',
        )
    if (null_at := _first_null(data)) is not None:
        from netjail.settings.validation_errors import render_path  # error paths only: import time matters

        raise SettingsError(
            file, render_path(null_at)[0], "null is not a value here", "remove the key to get its default"
        )
    data, expansions, remap = _expand_allowed(file, copy.deepcopy(data), environ)
    data = _expand_rule_hosts(file, data, expansions, environ)
    try:
        # JSON mode keeps JSON's types strict (no "true" for true, no 1 for true) as srt's zod schema does.
        settings = Settings.model_validate_json(json.dumps(data), strict=True, by_alias=True, by_name=False)
    except ValidationError as exc:
        from netjail.settings.validation_errors import to_settings_error

        raise to_settings_error(file, exc, remap) from None
    from netjail.settings.contradictions import contradictions

    warnings = (
        *collect_warnings(settings),
        *settings.network.pin_warnings(),
        *contradictions(settings, expansions, environ, written_deny_read=data["filesystem"].get("denyRead")),
    )
    return LoadedSettings(settings, path, origin, warnings, expansions)
