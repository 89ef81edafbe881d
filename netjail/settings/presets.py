"""Package-manager presets for ``network.allowedDomains``: ``"@pip"`` and ``"@npm"``.

A preset stands for the hosts a package manager on *this* machine is configured to use, read from
that manager's own configuration when the settings are loaded. No registry host is written in this
source: pip's default index comes from pip itself, npm's registry from npm's configuration.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["PRESETS", "PresetError", "expand_preset", "expand_presets", "url_host"]

# Module-level so tests can point them at fake files; these are the fixed system locations.
ETC_PIP_CONF = Path("/etc/pip.conf")
ETC_NPMRC = Path("/etc/npmrc")
NPM_TIMEOUT_S = 5.0


class PresetError(ValueError):
    """A preset could not be expanded. The message says what to do."""

    def __init__(self, preset: str, message: str) -> None:
        super().__init__(message)
        self.preset = preset


def expand_presets(
    entries: list[str],
    environ: Mapping[str, str] = os.environ,
    *,
    cwd: Path | None = None,
) -> tuple[list[str], dict[str, list[str]]]:
    """Replace each ``@name`` entry by its hosts; other entries pass through unchanged.

    Returns the expanded list and ``{"@name": [hosts]}`` for every preset used.
    """
    out: list[str] = []
    expansions: dict[str, list[str]] = {}
    for entry in entries:
        if not entry.startswith("@"):
            out.append(entry)
            continue
        if entry not in expansions:
            expansions[entry] = expand_preset(entry, environ, cwd=cwd)
        out.extend(expansions[entry])
    return out, expansions


def expand_preset(
    name: str, environ: Mapping[str, str] = os.environ, *, cwd: Path | None = None
) -> list[str]:
    """The hosts of one preset, de-duplicated in order. Raises PresetError."""
    resolver = PRESETS.get(name)
    if resolver is None:
        known = ", ".join(sorted(PRESETS))
        raise PresetError(name, f"unknown preset {name!r}; known presets are {known}")
    hosts = resolver(environ, cwd or Path.cwd())
    if not hosts and name != "@netjail":  # the marker allows nothing by design
        raise PresetError(name, f"preset {name} found no host to allow")
    return list(dict.fromkeys(hosts))


def url_host(url: str) -> str | None:
    """``host`` or ``host:port`` (non-default port only) of an index URL; None for ``file:``.

    IPv6 hosts come back bracketed, the spelling allowedDomains requires. Raises ValueError.
    """
    parts = urlsplit(url.strip())
    if parts.scheme == "file":
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) or file URL")
    port = parts.port  # raises ValueError for a bad port
    host = parts.hostname  # lower-cased, userinfo and brackets removed
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    return host if port in (None, default_port) else f"{host}:{port}"


def _host_of(preset: str, url: str, where: str) -> str | None:
    try:
        return url_host(url)
    except ValueError as exc:
        raise PresetError(preset, f"{where} sets an unusable URL: {exc}") from None


# ---------------------------------------------------------------------------------------------
# @pip


def _pip_norm(name: str) -> str:
    # pip's own normalisation (configuration._normalize_name): INDEX_URL, index_url -> index-url.
    return name.lower().replace("_", "-").removeprefix("--")


def _pip_config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's configuration files, lowest precedence first (pip/_internal/configuration.py)."""
    config_file = environ.get("PIP_CONFIG_FILE")
    if config_file == os.devnull:  # pip's documented way to load no file at all
        return []
    home = Path(environ.get("HOME") or Path.home())
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(ETC_PIP_CONF)
    # pip skips the user files when PIP_CONFIG_FILE names an existing file.
    if not (config_file and Path(config_file).exists()):
        xdg_home = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        files += [home / ".pip" / "pip.conf", Path(xdg_home) / "pip" / "pip.conf"]
    # The "site" file of the virtualenv the command in the jail is likely to use.
    if venv := environ.get("VIRTUAL_ENV"):
        files.append(Path(venv) / "pip.conf")
    if config_file:
        files.append(Path(config_file))
    return [f for f in files if f.is_file()]


def _pip_settings(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``{"section.option": (value, where)}`` merged as pip merges it (later wins)."""
    merged: dict[str, tuple[str, str]] = {}
    for path in _pip_config_files(environ):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError, OSError) as exc:
            raise PresetError("@pip", f"cannot read pip configuration {path}: {exc}") from None
        for section in parser.sections():
            for name, value in parser.items(section):
                merged[f"{section}.{_pip_norm(name)}"] = (value, f"{path} [{section}]")
    for key, value in environ.items():
        if key.startswith("PIP_"):
            merged[f":env:.{_pip_norm(key[4:])}"] = (value, f"${key}")
    return merged


def _pip_option(merged: dict[str, tuple[str, str]], option: str, command: str) -> tuple[str, str] | None:
    # pip applies [global], then [<command>], then PIP_* variables; the last one set wins.
    for section in (":env:", command, "global"):
        if (hit := merged.get(f"{section}.{option}")) is not None:
            return hit
    return None


def _pip_default_hosts() -> list[str] | None:
    """pip's default index host and its file-storage host, from pip itself; None without pip."""
    try:
        from pip._internal.models.index import PyPI
    except ImportError:
        return None
    return [PyPI.netloc, PyPI.file_storage_domain]


def _pip_hosts(environ: Mapping[str, str], cwd: Path) -> list[str]:
    merged = _pip_settings(environ)
    hosts: list[str] = []
    uses_default = False
    for command in ("install", "download"):
        urls: list[tuple[str, str]] = []
        if (index := _pip_option(merged, "index-url", command)) is None:
            uses_default = True
        else:
            urls.append(index)
        if (extra := _pip_option(merged, "extra-index-url", command)) is not None:
            urls += [(url, extra[1]) for url in extra[0].split()]  # pip splits on whitespace
        for url, where in urls:
            if (host := _host_of("@pip", url, where)) is not None:
                hosts.append(host)
    defaults = _pip_default_hosts()
    if uses_default:
        if defaults is None:
            raise PresetError(
                "@pip",
                f"@pip needs pip to know its default index, but pip is not importable by {sys.executable}; "
                "install pip for this Python, or list your index host explicitly instead of @pip",
            )
        hosts += defaults
    elif defaults is not None and defaults[0] in hosts:
        hosts += defaults  # pip's default index spelled out still serves files from its file host
    return hosts


# ---------------------------------------------------------------------------------------------
# @npm

_NPM_REGISTRY_KEY = re.compile(r"^(@[^:\s]+:)?registry$")


def _read_npmrc(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """``registry`` and ``@scope:registry`` lines of one npmrc (npm's ``ini`` format)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError("@npm", f"cannot read npm configuration {path}: {exc}") from None
    found: dict[str, str] = {}
    in_section = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            in_section = True  # npm reads top-level keys only
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if in_section or not sep or not _NPM_REGISTRY_KEY.match(key):
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        # npm expands ${VAR} from the environment inside values.
        value = re.sub(r"\$\{([^}]*)\}", lambda m: environ.get(m.group(1), ""), value)
        found[key] = value  # a later line overrides an earlier one
    return found


def _npm_prefix(environ: Mapping[str, str]) -> Path | None:
    for var in ("npm_config_prefix", "NPM_CONFIG_PREFIX", "PREFIX"):
        if value := environ.get(var):
            return Path(value)
    # npm's default prefix is the directory above node's bin/.
    node = shutil.which("node", path=environ.get("PATH"))
    return Path(node).resolve().parent.parent if node else None


def _npm_config_files(environ: Mapping[str, str], cwd: Path) -> list[Path]:
    """npm configuration files, highest precedence first: project, user, global."""
    home = Path(environ.get("HOME") or Path.home())
    files = [cwd / ".npmrc"]
    files.append(
        Path(environ.get("npm_config_userconfig") or environ.get("NPM_CONFIG_USERCONFIG") or home / ".npmrc")
    )
    if globalconfig := environ.get("npm_config_globalconfig") or environ.get("NPM_CONFIG_GLOBALCONFIG"):
        files.append(Path(globalconfig))
    elif (prefix := _npm_prefix(environ)) is not None:
        files.append(prefix / "etc" / "npmrc")
    files.append(ETC_NPMRC)
    return list(dict.fromkeys(files))


def _npm_hosts(environ: Mapping[str, str], cwd: Path) -> list[str]:
    registries: dict[str, tuple[str, str]] = {}  # key -> (url, where); first found wins
    for var in ("npm_config_registry", "NPM_CONFIG_REGISTRY"):
        if value := environ.get(var):
            registries.setdefault("registry", (value, f"${var}"))
    for path in _npm_config_files(environ, cwd):
        for key, value in _read_npmrc(path, environ).items():
            registries.setdefault(key, (value, str(path)))
    if "registry" not in registries:
        registries["registry"] = (_npm_default_registry(environ, cwd), "`npm config get registry`")
    hosts = [_host_of("@npm", url, where) for url, where in registries.values()]
    return [h for h in hosts if h is not None]


def _npm_default_registry(environ: Mapping[str, str], cwd: Path) -> str:
    how = "set NPM_CONFIG_REGISTRY, or add a registry=<url> line to ~/.npmrc"
    npm = shutil.which("npm", path=environ.get("PATH"))
    if npm is None:
        raise PresetError(
            "@npm", f"@npm found no registry in npm's configuration and npm is not installed; {how}"
        )
    try:
        done = subprocess.run(
            [npm, "config", "get", "registry"],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            env=dict(environ),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PresetError("@npm", f"`npm config get registry` failed ({exc}); {how}") from None
    registry = done.stdout.strip()
    if done.returncode != 0 or not registry:
        raise PresetError(
            "@npm", f"`npm config get registry` gave no registry (exit {done.returncode}); {how}"
        )
    return registry


def _no_hosts(environ: Mapping[str, str], home: Path) -> list[str]:
    """`@netjail`: the marker of a file that needs netjail (docs/policy.md, "Under srt"). It adds no host; srt
    refuses any "@" entry of allowedDomains, so the file fails there instead of losing network.rules silently."""
    return []


PRESETS: dict[str, Callable[[Mapping[str, str], Path], list[str]]] = {
    "@pip": _pip_hosts,
    "@npm": _npm_hosts,
    "@netjail": _no_hosts,
}


def presets_covering(
    hosts: list[str], environ: Mapping[str, str] = os.environ, *, cwd: Path | None = None
) -> dict[str, str]:
    """host -> the preset whose hosts include it, for the hosts of `hosts` a preset covers: a hint can then name
    `@pip` (index and file host at once) rather than the one host this run happened to reach first. A preset
    that cannot be resolved here covers nothing."""
    covered: dict[str, str] = {}
    for name in PRESETS:
        try:
            preset_hosts = {_name_part(h) for h in expand_preset(name, environ, cwd=cwd)}
        except PresetError:
            continue
        for host in hosts:
            if _name_part(host) in preset_hosts:
                covered.setdefault(host.lower(), name)
    return covered


def _name_part(entry: str) -> str:
    """`host:port`, `[v6]:port` or `host` -> the host, lower-cased."""
    entry = entry.lower()
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    return entry.rpartition(":")[0] if entry.count(":") == 1 else entry


def preset_sources(
    name: str, environ: Mapping[str, str] = os.environ, *, cwd: Path | None = None
) -> list[Path]:
    """The configuration files the tool reads its index or registry from (those that exist and set one): if the
    jail hides one, the tool inside falls back to its default and asks another host than the preset allowed."""
    cwd = cwd or Path.cwd()
    sources: list[Path] = []
    try:
        if name == "@npm":
            sources = [p for p in _npm_config_files(environ, cwd) if _read_npmrc(p, environ)]
        elif name == "@pip":
            for path in _pip_config_files(environ):
                parser = configparser.RawConfigParser()
                if parser.read(path, encoding="utf-8") and any(
                    _pip_norm(key) in ("index-url", "extra-index-url")
                    for section in parser.sections()
                    for key, _ in parser.items(section)
                ):
                    sources.append(path)
    except (PresetError, configparser.Error, UnicodeDecodeError, OSError):
        return []
    return sources
