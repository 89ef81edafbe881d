"""`netjail doctor`: what this machine needs and can do, judged from one `Probes` record (gathered by
netjail/inspect/doctor_probes.py). Pure functions: each check takes the probes and returns a `Check`, with the
one command that fixes what is missing; the tests feed them fake probes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from netjail.inspect.doctor_probes import Probes

Status = Literal["ok", "warn", "fail"]
# Options of bwrap that netjail's argument list uses (netjail/jail/linux/bwrap.py), and those it may use.
BWRAP_REQUIRED = ("--seccomp", "--json-status-fd", "--die-with-parent", "--unshare-cgroup-try")
BWRAP_OPTIONAL = ("--bind-fd",)
LOW_FREE_BYTES = 200 * 1024 * 1024  # a long run's flows.mitm reaches that
INSTALL_BWRAP = "apt-get install bubblewrap"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    summary: str  # what was found, in words
    fix: str | None = None  # the one command (or step) that fixes it

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def ok(name: str, summary: str) -> Check:
    return Check(name, "ok", summary)


# -- Linux ------------------------------------------------------------------------------------------------------


def check_bwrap(p: Probes) -> Check:
    if p.bwrap_path is None:
        return Check("bwrap", "fail", "bubblewrap (bwrap) is not on PATH", INSTALL_BWRAP)
    missing = [option for option in BWRAP_REQUIRED if option not in p.bwrap_help]
    identity = f"bubblewrap {p.bwrap_version or '(unknown version)'} at {p.bwrap_path}"
    if missing:
        return Check(
            "bwrap",
            "fail",
            f"{identity} lacks {', '.join(missing)}, which netjail uses",
            "apt-get install --only-upgrade bubblewrap",
        )
    extra = [option for option in BWRAP_OPTIONAL if option in p.bwrap_help]
    return ok("bwrap", f"{identity}; has {', '.join(BWRAP_REQUIRED + tuple(extra))}")


def check_user_namespaces(p: Probes) -> Check:
    clone = p.sysctls.get("kernel.unprivileged_userns_clone")
    max_ns = p.sysctls.get("user.max_user_namespaces")
    apparmor = p.sysctls.get("kernel.apparmor_restrict_unprivileged_userns")
    shown = ", ".join(f"{name}={value}" for name, value in p.sysctls.items() if value is not None)
    if p.userns_problem is None:
        return ok(
            "user namespaces", "a user + network namespace can be created" + (f" ({shown})" if shown else "")
        )
    if max_ns == 0:
        fix = "sysctl -w user.max_user_namespaces=15000"
    elif clone == 0 and not p.is_root:
        fix = "sysctl -w kernel.unprivileged_userns_clone=1"
    elif apparmor == 1 and not p.is_root:
        # Ubuntu 24.04+: the narrower fix is an AppArmor profile granting `userns` to bwrap and python
        fix = "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
    else:
        fix = "allow user namespaces for this user (a container needs --privileged or a seccomp profile allowing unshare)"
    return Check("user namespaces", "fail", p.userns_problem + (f" ({shown})" if shown else ""), fix)


def check_netfilter(p: Probes) -> Check:
    """Transparent capture. Without it a run falls back to proxy variables (network.capture "auto"), unless the
    settings demand it ("transparent")."""
    if p.userns_problem is not None:
        return Check("netfilter", "warn", "not tried: no user namespace (see above)")
    if p.netfilter_problem is None:
        return ok("netfilter", "nft rules and routes install in a user namespace: transparent capture works")
    status: Status = "fail" if p.settings_capture == "transparent" else "warn"
    consequence = (
        'the settings require network.capture "transparent"'
        if status == "fail"
        else "runs fall back to proxy variables (only clients that honour HTTP_PROXY reach the network)"
    )
    if "not installed" in p.netfilter_problem:
        fix = "apt-get install nftables iproute2"
    elif p.sysctls.get("kernel.apparmor_restrict_unprivileged_userns") == 1 and not p.is_root:
        fix = "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
    else:
        fix = "modprobe nf_tables nft_redir nft_fib_inet (the kernel needs nf_tables with redirect and fib)"
    return Check("netfilter", status, f"{p.netfilter_problem}; {consequence}", fix)


def check_seccomp(p: Probes) -> Check:
    if p.seccomp_problem is None:
        return ok("seccomp", "libseccomp loads and the filter compiles")
    return Check("seccomp", "fail", p.seccomp_problem.split(" Fix: ")[0], "apt-get install libseccomp2")


# -- macOS ------------------------------------------------------------------------------------------------------


def check_sandbox_exec(p: Probes) -> Check:
    if p.sandbox_exec_path is None:
        return Check(
            "sandbox-exec",
            "fail",
            "/usr/bin/sandbox-exec is missing",
            "use a macOS release that ships /usr/bin/sandbox-exec (part of the base system)",
        )
    return ok("sandbox-exec", f"{p.sandbox_exec_path} is present")


# -- everywhere ---------------------------------------------------------------------------------------------------


def check_python(p: Probes) -> Check:
    wanted = re.fullmatch(r">=\s*(\d+)\.(\d+)", p.python_required.strip())
    have = tuple(int(n) for n in p.python_version.split(".")[:2])
    if wanted and have < (int(wanted[1]), int(wanted[2])):
        return Check(
            "python",
            "fail",
            f"Python {p.python_version}; netjail needs {p.python_required}",
            f"install Python {wanted[1]}.{wanted[2]}+ and reinstall netjail with it",
        )
    return ok(
        "python",
        f"Python {p.python_version}" + (f" (needs {p.python_required})" if p.python_required else ""),
    )


def check_mitmproxy(p: Probes) -> Check:
    if p.mitmproxy_version is None:
        return Check(
            "mitmproxy", "fail", "mitmproxy is not installed", f"pip install '{p.mitmproxy_required}'"
        )
    wanted = re.fullmatch(r"mitmproxy\s*==\s*([\d.]+?)(\.\*)?", p.mitmproxy_required)
    if wanted and not (
        p.mitmproxy_version.startswith(wanted[1] + ".") if wanted[2] else p.mitmproxy_version == wanted[1]
    ):
        return Check(
            "mitmproxy",
            "warn",
            f"mitmproxy {p.mitmproxy_version}; netjail is tested with {p.mitmproxy_required}",
            f"pip install '{p.mitmproxy_required}'",
        )
    return ok("mitmproxy", f"mitmproxy {p.mitmproxy_version}")


def check_state_dir(p: Probes) -> Check:
    where = f"{p.state_dir}" + (f" on {p.state_filesystem}" if p.state_filesystem else "")
    if p.state_problem is not None:
        return Check(
            "state directory",
            "fail",
            f"{p.state_problem}; runs cannot be recorded",
            "export NETJAIL_STATE_DIR=/var/tmp/netjail-$(id -u)  (any writable local directory)",
        )
    if p.state_filesystem in ("nfs", "nfs4", "cifs", "smb3", "fuse.sshfs"):
        return Check(
            "state directory",
            "warn",
            f"{where}: a network filesystem (records are written on every flow)",
            "export NETJAIL_STATE_DIR=/var/tmp/$USER-netjail (a local directory)",
        )
    free = p.state_free_bytes
    if free is not None and free < LOW_FREE_BYTES:
        return Check(
            "state directory",
            "warn",
            f"{where}: only {format_bytes(free)} free",
            "netjail runs --prune (or free space on that filesystem)",
        )
    return ok(
        "state directory", f"{where}, writable" + (f", {format_bytes(free)} free" if free is not None else "")
    )


def check_settings(p: Probes) -> Check:
    origin = {
        "flag": "-s",
        "env": "$NETJAIL_SETTINGS",
        "user": "the user's file",
        "bundled": "the bundled default",
    }.get(p.settings_origin, p.settings_origin)
    if p.settings_problem is not None:
        return Check(
            "settings",
            "fail",
            f"{p.settings_path} ({origin}) is refused: {p.settings_problem}",
            f"netjail config check {p.settings_path}",
        )
    return ok("settings", f"{p.settings_path} ({origin}) loads")


LINUX_CHECKS: tuple[Callable[[Probes], Check], ...] = (
    check_bwrap,
    check_user_namespaces,
    check_netfilter,
    check_seccomp,
)
COMMON_CHECKS: tuple[Callable[[Probes], Check], ...] = (
    check_python,
    check_mitmproxy,
    check_state_dir,
    check_settings,
)


def diagnose(p: Probes) -> list[Check]:
    jail = (check_sandbox_exec,) if p.platform == "darwin" else LINUX_CHECKS
    return [check(p) for check in (*jail, *COMMON_CHECKS)]


def can_run(checks: list[Check]) -> bool:
    return all(c.status != "fail" for c in checks)


def report(p: Probes, checks: list[Check]) -> dict:
    """The `--json` document."""
    return {
        "platform": p.platform,
        "can_run": can_run(checks),
        "checks": [c.as_dict() for c in checks],
        "probes": p.as_dict(),
    }


MARKS = {"ok": "ok", "warn": "warn", "fail": "FAIL"}


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{MARKS[c.status]:<5} {c.name:<{width}}  {c.summary}")
        if c.fix and c.status != "ok":
            lines.append(f"{'':<5} {'':<{width}}  fix: {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    if failed:
        lines.append(f"netjail cannot run here: {failed} problem{'s' if failed > 1 else ''} (marked FAIL).")
    else:
        lines.append("netjail can run here.")
    return "\n".join(lines) + "\n"


def format_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
