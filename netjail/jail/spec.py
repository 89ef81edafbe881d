"""The platform interface: what every jail backend is given and must provide.

The runner builds one `JailSpec` from the validated settings and hands it to the platform's `Jail`; it never
branches on the platform itself. Path rules (which host paths are writable, masked, protected) are resolved
here once, so the Linux bwrap backend and the macOS seatbelt backend apply the same policy.
"""

from __future__ import annotations

import glob
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Protocol

if TYPE_CHECKING:
    from netjail.proxy.ca import RunCA
    from netjail.settings import Settings

# Files and folders that run code or redirect tools the next time the user works: never writable, as in srt.
DANGEROUS_FILES = (
    ".gitconfig",
    ".gitmodules",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
    ".profile",
    ".ripgreprc",
    ".mcp.json",
    ".npmrc",
    ".pypirc",
)
DANGEROUS_DIRECTORIES = (".vscode", ".idea", ".claude/commands", ".claude/agents", ".devcontainer")
GIT_DIR_DENIES = ("hooks", "config")

PROXY_PORT = 3128  # inside the jail's own network namespace, so it never collides with the host


class JailError(Exception):
    """The jail cannot be set up: the command must not run."""


@dataclass(frozen=True)
class PathRules:
    """Absolute, symlink-resolved host paths, in the order the backends apply them."""

    writable: tuple[Path, ...]
    read_only: tuple[Path, ...]  # denyWrite and the mandatory denies inside writable paths
    hidden: tuple[Path, ...]  # denyRead
    reallowed: tuple[Path, ...]  # allowRead inside a denyRead region


@dataclass(frozen=True)
class JailSpec:
    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str]
    rules: PathRules
    ca: RunCA
    allow_pty: bool
    private_state: tuple[Path, ...]  # netjail's own settings, state and CA: masked inside
    files_dir: Path  # private directory for files the backend generates for the jail (resolv.conf, …)
    capture: str = "auto"  # network.capture
    allow_unix_sockets: bool = False  # network.allowAllUnixSockets: no seccomp rule against socket(AF_UNIX)
    debug: bool = False


@dataclass
class Launched:
    """A sandbox whose command is ready to start: the supervisor waits on `pid` and reads `status_fd`."""

    pid: int
    reaped: bool = False
    # role -> sockets the proxy serves: "proxy" (explicit HTTP proxy), "transparent", "dns"
    sockets: dict[str, list[socket.socket]] = field(default_factory=dict)
    status_fd: int = -1
    capture_mode: str = "proxy-variables"
    capture_warning: str | None = None
    gate: socket.socket | None = None  # the backend's hold on the command until `start`
    proxy_secret: str | None = None  # set when the proxy's listener is reachable from outside the jail
    dropped: list[dict] = field(default_factory=list)  # `dropped` records, known once `cleanup` has run

    def release(self) -> None:
        """Close what the supervisor still holds of the sandbox (the caller has made sure the process is gone)."""
        for sockets in self.sockets.values():
            for sock in sockets:
                sock.close()
        self.sockets.clear()
        if self.gate is not None:
            self.gate.close()
            self.gate = None
        if self.status_fd >= 0:
            os.close(self.status_fd)
            self.status_fd = -1


class Jail(Protocol):
    name: str

    def check(self) -> None:
        """Raise JailError when the platform lacks what the jail needs (before anything starts)."""

    def describe(self, spec: JailSpec) -> list[str]:
        """What will be applied, for `-d` and `netjail explain`."""

    def environment(self, base: dict[str, str], ca: RunCA) -> dict[str, str]:
        """The command's environment: proxy and CA variables as seen from inside this platform's jail."""

    def launch(self, spec: JailSpec) -> Launched:
        """Set the jail up with the command held back. Raise JailError if it cannot be set up."""

    def start(self, launched: Launched) -> None:
        """Let the command run."""

    def child_exit_status(self, launched: Launched, wait_status: int) -> int | None:
        """The command's exit status, or None when the jail itself failed before the command ran."""

    def signal(self, launched: Launched, signum: signal.Signals) -> None:
        """Forward a signal to the command (not to the jail's own machinery)."""

    def cleanup(self, launched: Launched) -> None:
        """Kill whatever is left and release what launch created."""


# -- path rules -----------------------------------------------------------------------------------------------


def _expand(entry: str, cwd: Path, *, deny: bool = False) -> list[Path]:
    """One settings path -> the host paths it names: `~` expanded, relative to cwd, globs matched.

    Only what the user wrote is a pattern: the home or working directory put in front of it is matched as the name
    it is (a working directory such as `proj[1]` would otherwise turn every relative entry into a pattern that
    matches nothing, and silently drop its deny). A deny entry spelt like a pattern also names the path spelt
    literally, when that exists: a deny may name more than meant, never less."""
    expanded = os.path.expanduser(entry)
    if entry.startswith("~") and expanded != entry:
        head = entry.split("/", 1)[0]
        base, written = os.path.expanduser(head), entry[len(head) :].lstrip("/")
        literal = os.path.join(base, written) if written else base
        pattern = os.path.join(glob.escape(base), written) if written else glob.escape(base)
    elif os.path.isabs(expanded):
        written = literal = pattern = expanded
    else:
        written = expanded
        literal, pattern = os.path.join(cwd, expanded), os.path.join(glob.escape(str(cwd)), expanded)
    if glob.has_magic(written):
        found = sorted(glob.glob(pattern, recursive=True))
        if deny and os.path.lexists(literal):
            found.append(literal)
        return [Path(os.path.realpath(p)) for p in found]
    return [Path(os.path.realpath(literal))]


def _existing(paths: list[Path]) -> list[Path]:
    return [p for p in paths if os.path.lexists(p)]


def _unique(paths: list[Path]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(paths))


def mandatory_denies(root: Path, depth: int, allow_git_config: bool) -> list[Path]:
    """Dangerous files under a writable root, found to `depth` levels (node_modules skipped, as srt does)."""
    found: list[Path] = []
    git_denies = tuple(d for d in GIT_DIR_DENIES if not (allow_git_config and d == "config"))
    start_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        level = len(here.parts) - start_depth
        dirnames[:] = [d for d in dirnames if d != "node_modules"] if level < depth else []
        for name in DANGEROUS_FILES:
            if name in filenames or name in dirnames:
                found.append(here / name)
        for name in DANGEROUS_DIRECTORIES:
            if (here / name).is_dir():
                found.append(here / name)
        if ".git" in dirnames or (here / ".git").is_dir():
            found.extend(here / ".git" / d for d in git_denies if os.path.lexists(here / ".git" / d))
    return found


def path_rules(settings: Settings, cwd: Path, extra_read_only: tuple[Path, ...] = ()) -> PathRules:
    fs = settings.filesystem
    writable = _unique(_existing([p for e in fs.allow_write for p in _expand(e, cwd)]))
    mandatory = [
        p
        for root in writable
        for p in mandatory_denies(root, settings.mandatory_deny_search_depth, fs.allow_git_config)
    ]
    denied_writes = _existing([p for e in fs.deny_write for p in _expand(e, cwd, deny=True)])
    read_only = _unique(denied_writes + mandatory + list(extra_read_only))
    hidden = _unique(_existing([p for e in fs.deny_read for p in _expand(e, cwd, deny=True)]))
    reallowed = _unique(
        [p for p in _existing([p for e in fs.allow_read for p in _expand(e, cwd)]) if _under_any(p, hidden)]
    )
    return PathRules(writable=writable, read_only=read_only, hidden=hidden, reallowed=reallowed)


def _under_any(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == r or r in path.parents for r in roots)


# -- environment ----------------------------------------------------------------------------------------------

# What the command inherits from netjail's environment without being asked: what shells, terminals, locales and
# toolchains need to work, and nothing that commonly holds a credential (tokens, keys, agent sockets, DISPLAY).
# Anything else passes only when named in the settings' envPassthrough.
INHERITED_VARIABLES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "TERM", "COLORTERM", "TZ", "TMPDIR",
        "LANG", "LANGUAGE", "EDITOR", "VISUAL", "PAGER", "LESS", "NO_COLOR", "FORCE_COLOR", "CLICOLOR",
        "COLUMNS", "LINES", "CI", "DEBIAN_FRONTEND", "LD_LIBRARY_PATH",
        "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
        "VIRTUAL_ENV", "CONDA_PREFIX", "PYENV_ROOT", "PYENV_VERSION", "PYTHONPATH", "PYTHONUTF8",
        "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE",
        "NVM_DIR", "NODE_PATH", "NPM_CONFIG_REGISTRY", "npm_config_registry", "npm_config_cache",
        "GOPATH", "GOROOT", "GOMODCACHE", "GOFLAGS", "GOPROXY", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN",
        "JAVA_HOME", "MAVEN_HOME", "GRADLE_USER_HOME", "GEM_HOME", "GEM_PATH", "BUNDLE_PATH",
    }
)  # fmt: skip
INHERITED_PREFIXES = ("LC_",)


def inherited_environment(environ: Mapping[str, str], passthrough: Iterable[str] = ()) -> dict[str, str]:
    keep = INHERITED_VARIABLES | set(passthrough)
    return {k: v for k, v in environ.items() if k in keep or k.startswith(INHERITED_PREFIXES)}


CA_REPLACING_VARS = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
    "CARGO_HTTP_CAINFO",
    "HEX_CACERTS_PATH",
)
CA_ADDITIVE_VARS = ("NODE_EXTRA_CA_CERTS", "DENO_CERT")


def jail_environment(base: dict[str, str], proxy_url: str, jail_bundle: str, ca_cert: str) -> dict[str, str]:
    """The command's environment: the host's, plus the variables that route clients through the proxy and
    make them trust the run's CA (the same set srt sets, and the CA variables it does not)."""
    env = dict(base)
    host, _, port = proxy_url.removeprefix("http://").rpartition(":")
    no_proxy = "localhost,127.0.0.1,::1"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY"):
        env[name] = env[name.lower()] = proxy_url
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    env["NODE_USE_ENV_PROXY"] = "1"  # Node's built-in fetch ignores the variables without it
    env["JAVA_TOOL_OPTIONS"] = " ".join(
        filter(
            None,
            [
                base.get("JAVA_TOOL_OPTIONS", ""),
                f"-Dhttp.proxyHost={host} -Dhttp.proxyPort={port}",
                f"-Dhttps.proxyHost={host} -Dhttps.proxyPort={port}",
                "-Dhttp.nonProxyHosts=localhost|127.0.0.1",
            ],
        )
    )
    env["GIT_SSH_COMMAND"] = (
        f"ssh -o ControlMaster=no -o ControlPath=none -o ProxyCommand='socat - PROXY:{host}:%h:%p,proxyport={port}'"
    )
    for name in CA_REPLACING_VARS:
        env[name] = jail_bundle
    for name in CA_ADDITIVE_VARS:
        env[name] = ca_cert
    env["NETJAIL"] = "1"
    env["SANDBOX_RUNTIME"] = "1"  # tools that detect srt's sandbox behave the same here
    return env
