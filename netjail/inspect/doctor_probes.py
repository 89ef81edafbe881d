"""What `netjail doctor` looks at on this machine: every fact gathered once, into one `Probes` record, which the
pure checks of netjail/inspect/doctor.py judge. Nothing here decides; nothing here writes outside a throwaway
namespace and one temporary file in the state directory (removed at once)."""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SYSCTLS = (
    "kernel.unprivileged_userns_clone",  # Debian's patch; absent on other kernels
    "user.max_user_namespaces",
    "kernel.apparmor_restrict_unprivileged_userns",  # Ubuntu 24.04+
)
SANDBOX_EXEC = "/usr/bin/sandbox-exec"


@dataclass(frozen=True)
class Probes:
    platform: str  # sys.platform: "linux", "darwin"
    is_root: bool
    python_version: str
    python_required: str  # Requires-Python of the installed netjail, e.g. ">=3.12"
    mitmproxy_version: str | None
    mitmproxy_required: str  # the Requires-Dist entry, e.g. "mitmproxy==12.3.*"
    state_dir: str
    state_problem: str | None  # None: a file can be created there (or in the ancestor that will hold it)
    state_filesystem: str | None  # the mount's type from /proc/self/mountinfo: "ext4", "tmpfs", "nfs4"…
    state_free_bytes: int | None
    settings_path: str
    settings_origin: str
    settings_problem: str | None  # the loader's one-line refusal
    settings_capture: str | None  # network.capture of the settings, when they load
    # Linux
    bwrap_path: str | None = None
    bwrap_version: str | None = None
    bwrap_help: str = ""  # `bwrap --help`: which options this bwrap has
    sysctls: dict[str, int | None] = field(default_factory=dict)
    userns_problem: str | None = None  # None: a user + network namespace was created
    netfilter_problem: str | None = None  # None: the capture rules and routes installed in one
    seccomp_problem: str | None = None  # None: the filter compiled
    # macOS
    sandbox_exec_path: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def probe(environ: dict[str, str] | None = None) -> Probes:
    """Look at this machine. Takes a second at most (one forked namespace probe)."""
    env = dict(os.environ if environ is None else environ)
    common = _common(env)
    if sys.platform == "darwin":
        found = SANDBOX_EXEC if os.access(SANDBOX_EXEC, os.X_OK) else None
        return Probes(**common, sandbox_exec_path=found)
    bwrap = shutil.which("bwrap", path=env.get("PATH"))
    version, help_text = _bwrap_identity(bwrap) if bwrap else (None, "")
    userns, netfilter = _namespace_probe()
    return Probes(
        **common,
        bwrap_path=bwrap,
        bwrap_version=version,
        bwrap_help=help_text,
        sysctls={name: _sysctl(name) for name in SYSCTLS},
        userns_problem=userns,
        netfilter_problem=netfilter,
        seccomp_problem=_seccomp_problem(),
    )


# -- everywhere -----------------------------------------------------------------------------------------------


def _common(env: dict[str, str]) -> dict:
    from netjail.records.rundir import state_dir

    state = state_dir(env)
    problem, filesystem, free = _state_facts(state)
    settings = _settings_facts(env)
    return dict(
        platform=sys.platform,
        is_root=os.geteuid() == 0,
        python_version=platform.python_version(),
        python_required=_netjail_metadata("Requires-Python") or "",
        mitmproxy_version=_version("mitmproxy"),
        mitmproxy_required=_requirement("mitmproxy"),
        state_dir=str(state),
        state_problem=problem,
        state_filesystem=filesystem,
        state_free_bytes=free,
        **settings,
    )


def _netjail_metadata(key: str) -> str | None:
    try:
        return importlib.metadata.metadata("netjail").get(key)
    except importlib.metadata.PackageNotFoundError:
        return None


def _requirement(name: str) -> str:
    try:
        requires = importlib.metadata.requires("netjail") or []
    except importlib.metadata.PackageNotFoundError:
        return name
    return next((r.split(";")[0].strip() for r in requires if r.split("=")[0].strip() == name), name)


def _version(name: str) -> str | None:
    """Read from the package's metadata: importing mitmproxy would cost the supervisor a second."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _state_facts(state: Path) -> tuple[str | None, str | None, int | None]:
    # The directory may not exist yet (a run creates it): what matters then is the ancestor that will hold it.
    existing = state
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is not a directory"
    elif existing == state:
        try:
            with tempfile.TemporaryFile(dir=state, prefix=".netjail-doctor-"):
                pass
        except OSError as e:
            problem = f"cannot create a file in {state} ({e.strerror or e})"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{state} does not exist and {existing} is not writable"
    try:
        stats = os.statvfs(existing)
        free: int | None = stats.f_bavail * stats.f_frsize
    except OSError:
        free = None
    return problem, _filesystem_of(existing), free


def _filesystem_of(path: Path) -> str | None:
    """The type of the mount holding `path`: the longest mount point that is a prefix of it."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    resolved = str(path.resolve())
    best, best_type = "", None
    for line in lines:
        # id parent major:minor root mount-point options [optional…] - type source super-options
        before, _, after = line.partition(" - ")
        fields = before.split()
        if len(fields) < 5 or not after:
            continue
        mount_point = fields[4].replace("\\040", " ")
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, after.split()[0]
    return best_type


def _settings_facts(env: dict[str, str]) -> dict:
    from netjail.settings import SettingsError, find_settings_path, load_settings

    path, origin = find_settings_path(None, env)
    problem, capture = None, None
    try:
        capture = load_settings(path, origin=origin, environ=env).settings.network.capture
    except SettingsError as e:
        problem = str(e)
    return dict(
        settings_path=str(path), settings_origin=origin, settings_problem=problem, settings_capture=capture
    )


# -- Linux ----------------------------------------------------------------------------------------------------


def _bwrap_identity(bwrap: str) -> tuple[str | None, str]:
    def output(*args: str) -> str:
        try:
            done = subprocess.run([bwrap, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout + done.stderr

    version = output("--version").strip()
    return (version.split()[-1] if version else None), output("--help")


def _sysctl(name: str) -> int | None:
    try:
        return int(Path("/proc/sys", *name.split(".")).read_text().strip())
    except (OSError, ValueError):
        return None


def _seccomp_problem() -> str | None:
    from netjail.jail.linux.seccomp import SeccompUnavailable, build_filter

    try:
        build_filter(allow_unix_sockets=False)
    except SeccompUnavailable as e:
        return str(e)
    return None


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def _namespace_probe(timeout: float = 20) -> tuple[str | None, str | None]:
    """What a run does first, in a forked child that then exits: a new user + network namespace (as the jail's
    helper creates it), then the capture's routes and netfilter rules inside it. The namespace dies with the
    child, rules and all. Returns (user namespace problem, netfilter problem)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        os.close(read_end)
        report = _in_namespace()
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.02)
    with os.fdopen(read_end, "rb") as answer:
        raw = answer.read()
    try:
        report = json.loads(raw)
    except ValueError:
        return "the namespace probe did not answer", "not tried: no user namespace"
    return report.get("userns"), report.get("netfilter")


def _in_namespace() -> dict[str, str | None]:  # pragma: no cover - runs in the forked child
    from netjail.jail.linux.capture import CaptureError, install_capture

    uid, gid = os.getuid(), os.getgid()
    try:
        os.unshare(os.CLONE_NEWUSER | os.CLONE_NEWNET)
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    except OSError as e:
        return {"userns": f"cannot create a user + network namespace ({e.strerror or e})", "netfilter": None}
    try:
        # as the jail's helper does (netjail/jail/linux/helper.py): routes need loopback up
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            request = struct.pack("16sH14x", b"lo", 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
        install_capture(ipv6=False)
    except (CaptureError, OSError) as e:
        return {"userns": None, "netfilter": str(e)}
    return {"userns": None, "netfilter": None}
