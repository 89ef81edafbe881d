"""netjail/inspect/doctor.py: the checks, judged from fake probes (no machine is looked at)."""

from __future__ import annotations

import dataclasses

import pytest

from netjail.inspect.doctor import can_run, diagnose, render, report
from netjail.inspect.doctor_probes import Probes

BWRAP_HELP = "--seccomp FD\n--json-status-fd FD\n--die-with-parent\n--unshare-cgroup-try\n--bind-fd FD DEST\n"
HEALTHY = Probes(
    platform="linux",
    is_root=False,
    python_version="3.13.0",
    python_required=">=3.12",
    mitmproxy_version="12.3.1",
    mitmproxy_required="mitmproxy==12.3.*",
    state_dir="/home/u/.local/state/netjail",
    state_problem=None,
    state_filesystem="ext4",
    state_free_bytes=50 * 2**30,
    settings_path="/home/u/.config/netjail/settings.json",
    settings_origin="user",
    settings_problem=None,
    settings_capture="auto",
    bwrap_path="/usr/bin/bwrap",
    bwrap_version="0.8.0",
    bwrap_help=BWRAP_HELP,
    sysctls={
        "kernel.unprivileged_userns_clone": 1,
        "user.max_user_namespaces": 63000,
        "kernel.apparmor_restrict_unprivileged_userns": None,
    },
)


def with_(**changes: object) -> Probes:
    return dataclasses.replace(HEALTHY, **changes)


def by_name(probes: Probes) -> dict[str, tuple[str, str, str | None]]:
    return {c.name: (c.status, c.summary, c.fix) for c in diagnose(probes)}


def test_a_healthy_machine_passes_every_check() -> None:
    checks = diagnose(HEALTHY)
    assert [c.name for c in checks] == [
        "bwrap",
        "user namespaces",
        "netfilter",
        "seccomp",
        "python",
        "mitmproxy",
        "state directory",
        "settings",
    ]
    assert {c.status for c in checks} == {"ok"} and can_run(checks)
    assert render(checks).endswith("netjail can run here.\n")
    assert "bubblewrap 0.8.0 at /usr/bin/bwrap" in by_name(HEALTHY)["bwrap"][1]
    assert "on ext4" in by_name(HEALTHY)["state directory"][1]


SYSCTLS = HEALTHY.sysctls


@pytest.mark.parametrize(
    ("changes", "name", "status", "fix"),
    [
        ({"bwrap_path": None}, "bwrap", "fail", "apt-get install bubblewrap"),
        ({"bwrap_help": "--die-with-parent\n"}, "bwrap", "fail", "apt-get install --only-upgrade bubblewrap"),
        (
            {"userns_problem": "cannot create a user + network namespace (Operation not permitted)",
             "sysctls": {**SYSCTLS, "kernel.unprivileged_userns_clone": 0}},
            "user namespaces", "fail", "sysctl -w kernel.unprivileged_userns_clone=1",
        ),
        (
            {"userns_problem": "cannot create a user + network namespace (No space left on device)",
             "sysctls": {**SYSCTLS, "user.max_user_namespaces": 0}},
            "user namespaces", "fail", "sysctl -w user.max_user_namespaces=15000",
        ),
        (
            {"userns_problem": "cannot create a user + network namespace (Permission denied)",
             "sysctls": {**SYSCTLS, "kernel.apparmor_restrict_unprivileged_userns": 1}},
            "user namespaces", "fail", "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
        ),
        (
            {"netfilter_problem": "nft is not installed (Debian/Ubuntu: apt-get install iproute2 nftables)"},
            "netfilter", "warn", "apt-get install nftables iproute2",
        ),
        (
            {"netfilter_problem": "nft (/usr/sbin/nft) failed: Operation not supported", "settings_capture": "transparent"},
            "netfilter", "fail", "modprobe nf_tables nft_redir nft_fib_inet (the kernel needs nf_tables with redirect and fib)",
        ),
        (
            {"seccomp_problem": "libseccomp is not available (x). Fix: apt-get install libseccomp2"},
            "seccomp", "fail", "apt-get install libseccomp2",
        ),
        ({"python_version": "3.11.4"}, "python", "fail", "install Python 3.12+ and reinstall netjail with it"),
        ({"mitmproxy_version": None}, "mitmproxy", "fail", "pip install 'mitmproxy==12.3.*'"),
        ({"mitmproxy_version": "11.0.2"}, "mitmproxy", "warn", "pip install 'mitmproxy==12.3.*'"),
        (
            {"state_problem": "cannot create a file in /s (Read-only file system)"},
            "state directory", "fail", "export NETJAIL_STATE_DIR=/var/tmp/netjail-$(id -u)  (any writable local directory)",
        ),
        ({"state_free_bytes": 10 * 2**20}, "state directory", "warn", "netjail runs --prune (or free space on that filesystem)"),
        ({"state_filesystem": "nfs4"}, "state directory", "warn", "export NETJAIL_STATE_DIR=/var/tmp/$USER-netjail (a local directory)"),
        (
            {"settings_problem": "/x.json: (file): the file is empty. Fix: write a JSON object"},
            "settings", "fail", "netjail config check /home/u/.config/netjail/settings.json",
        ),
    ],
)  # fmt: skip
def test_each_missing_piece_names_its_one_fix(changes: dict, name: str, status: str, fix: str) -> None:
    probes = with_(**changes)
    found = by_name(probes)[name]
    assert found[0] == status and found[2] == fix
    checks = diagnose(probes)
    assert can_run(checks) == (status != "fail")
    follows = {"user namespaces": "netfilter"}.get(name)  # netfilter is not tried without a namespace
    others = [c for c in checks if c.name not in (name, follows)]
    assert all(c.status == "ok" for c in others)
    assert f"fix: {fix}" in render(checks)


def test_without_a_user_namespace_netfilter_is_not_tried() -> None:
    probes = with_(userns_problem="cannot create a user + network namespace (Operation not permitted)")
    assert by_name(probes)["netfilter"][0] == "warn"
    assert "not tried" in by_name(probes)["netfilter"][1]
    assert render(diagnose(probes)).endswith("netjail cannot run here: 1 problem (marked FAIL).\n")


def test_root_needs_no_unprivileged_sysctl() -> None:
    probes = with_(
        is_root=True,
        userns_problem="cannot create a user + network namespace (Operation not permitted)",
        sysctls={**SYSCTLS, "kernel.unprivileged_userns_clone": 0},
    )
    assert by_name(probes)["user namespaces"][2] != "sysctl -w kernel.unprivileged_userns_clone=1"


def test_macos_checks_sandbox_exec_instead_of_bwrap() -> None:
    mac = with_(platform="darwin", bwrap_path=None, bwrap_help="", sandbox_exec_path="/usr/bin/sandbox-exec")
    names = [c.name for c in diagnose(mac)]
    assert names[0] == "sandbox-exec" and "bwrap" not in names and "netfilter" not in names
    assert can_run(diagnose(mac))
    missing = by_name(dataclasses.replace(mac, sandbox_exec_path=None))["sandbox-exec"]
    assert missing[0] == "fail"


def test_the_json_report_holds_the_verdict_checks_and_probes() -> None:
    checks = diagnose(with_(bwrap_path=None))
    document = report(with_(bwrap_path=None), checks)
    assert document["can_run"] is False and document["platform"] == "linux"
    assert document["checks"][0] == {
        "name": "bwrap",
        "status": "fail",
        "summary": "bubblewrap (bwrap) is not on PATH",
        "fix": "apt-get install bubblewrap",
    }
    assert document["probes"]["bwrap_path"] is None
