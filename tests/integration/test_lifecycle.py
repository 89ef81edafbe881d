"""Exit codes, bad settings, signals and cleanup: what a person sees at the shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from netjail.records.rundir import RunDir
from tests.support.netjail import REPO, Netjail, netjail_executable
from tests.support.wait import wait_until

pytestmark = pytest.mark.nonroot


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("true", 0),
        ("false", 1),
        ("exit 42", 42),
        ("kill -TERM $$", 128 + signal.SIGTERM),
        ("kill -KILL $$", 128 + signal.SIGKILL),
        ("/nonexistent/program", 127),
        ("/etc", 126),
    ],
)
def test_exit_status_of_c_command(netjail: Netjail, command: str, expected: int) -> None:
    result = netjail.run("-s", str(netjail.settings()), "-c", command)
    assert result.returncode == expected, result.explain()
    end = result.records[-1]
    assert end["event"] == "run_end" and end["exit_status"] == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sh", "-c", "exit 7"], 7),
        (["no-such-program-anywhere"], 127),
        (["/etc"], 126),
        (["--bind", "/", "/x"], 127),  # looks like an option: taken literally as the program's name
    ],
)
def test_exit_status_of_argv_command(netjail: Netjail, argv: list[str], expected: int) -> None:
    result = netjail.run("-s", str(netjail.settings()), "--", *argv)
    assert result.returncode == expected, result.explain()


def test_a_mistyped_subcommand_is_a_usage_error_and_nothing_runs(netjail: Netjail) -> None:
    proc = netjail.command("flow")
    assert proc.returncode == 2, proc.stderr
    assert "No such command 'flow'" in proc.stderr and "Did you mean 'flows'?" in proc.stderr
    assert not (netjail.state / "runs").exists()  # no run directory: nothing was started
    control = netjail.command("-s", str(netjail.settings()), "-c", "true")
    assert control.returncode == 0 and (netjail.state / "runs").exists()


@pytest.mark.parametrize(("first", "expected"), [("sh", 7), ("/bin/sh", 7)])
def test_a_program_as_the_first_word_still_runs(netjail: Netjail, first: str, expected: int) -> None:
    """srt's `netjail PROG ARG…` without `--`: a program found on PATH, or a path, runs."""
    env = {**netjail.env, "NETJAIL_SETTINGS": str(netjail.settings())}
    proc = netjail.command(first, "-c", "exit 7", env=env)
    assert proc.returncode == expected, proc.stderr


def test_help_shows_the_default_command_and_its_options(netjail: Netjail) -> None:
    proc = netjail.command("--help")
    assert proc.returncode == 0
    for words in ("-c 'CMD'", "-- PROG ARG", "-s, --settings FILE", "-c, --command CMD", "-d, --debug", "~."):
        assert words in proc.stdout, proc.stdout


def test_argv_is_passed_literally(netjail: Netjail) -> None:
    result = netjail.run(
        "-s", str(netjail.settings()), "--", "printf", "%s|", "--setenv", "$HOME", "a b", "-c"
    )
    assert result.returncode == 0, result.explain()
    assert result.stdout == "--setenv|$HOME|a b|-c|"


def test_run_start_and_end_records(netjail: Netjail) -> None:
    cfg = netjail.settings()
    result = netjail.run("-s", str(cfg), "-c", "exit 3")
    start, end = result.records
    assert start["event"] == "run_start" and start["command"] == "exit 3"
    assert start["settings_file"] == str(cfg) and start["capture_mode"] == "transparent"
    assert start["netjail_version"] and start["run_id"] == result.run_dir.name
    assert end == end | {"event": "run_end", "exit_status": 3, "reason": "exited"}
    assert json.loads((result.run_dir / "settings.json").read_text())["network"]["allowedDomains"] == []
    assert oct(result.run_dir.stat().st_mode & 0o777) == "0o700"
    assert not RunDir(result.run_dir).proxy_dir.exists(), "the CA key must not outlive the run"
    assert not (result.run_dir / "proxy").exists()


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("{not json", "(file)"),
        (
            '{"network": {"allowedDomains": ["*.com"], "deniedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}',
            "network.allowedDomains[0]",
        ),
        (
            '{"network": {"allowedDomains": ["a*b.com"], "deniedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}',
            "network.allowedDomains[0]",
        ),
        (
            '{"network": {"allowedDomains": ["ok.test", ""], "deniedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}',
            "network.allowedDomains[1]",
        ),
        (
            '{"network": {"allowedDomains": ["*"], "deniedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}',
            "network.allowedDomains[0]",
        ),
        (
            '{"network": {"allowedDomains": "x.test", "deniedDomains": []}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}',
            "network.allowedDomains",
        ),
        (
            '{"network": {"allowedDomain": []}, "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}',
            "network.allowedDomain",
        ),
    ],
)
def test_bad_settings_exit_125_naming_file_and_field_and_start_nothing(
    netjail: Netjail, content: str, field: str
) -> None:
    path = netjail.tmp_path / "bad.json"
    path.write_text(content)
    result = netjail.run("-s", str(path), "-c", "touch created-by-command")
    assert result.returncode == 125, result.explain()
    assert str(path) in result.stderr and field in result.stderr and "Fix:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (netjail.work / "created-by-command").exists()
    assert not netjail.state.exists(), "nothing may be created for a refused settings file"


def test_every_problem_of_a_settings_file_is_reported_at_once(netjail: Netjail) -> None:
    path = netjail.tmp_path / "three-problems.json"
    path.write_text(
        json.dumps(
            {
                "network": {"allowedDomains": ["*", "ok.test"], "deniedDomains": "x.test"},
                "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": [], "allowWirte": []},
            }
        )
    )
    result = netjail.run("-s", str(path), "-c", "touch created-by-command")
    assert result.returncode == 125, result.explain()
    lines = result.stderr.strip().splitlines()
    fields = ["network.allowedDomains[0]", "network.deniedDomains", "filesystem.allowWirte"]
    assert len(lines) == 3, lines
    for line, field in zip(lines, fields, strict=True):
        assert line.startswith(f"netjail: {path}: {field}: ") and "Fix:" in line
    assert 'did you mean "allowWrite"' in lines[2]
    assert not (netjail.work / "created-by-command").exists() and not netjail.state.exists()


def test_missing_settings_file_is_125(netjail: Netjail) -> None:
    result = netjail.run("-s", str(netjail.tmp_path / "nope.json"), "-c", "true")
    assert result.returncode == 125 and "nope.json" in result.stderr


def test_settings_search_order(netjail: Netjail, tmp_path: Path) -> None:
    env_cfg = netjail.settings({"allowedDomains": ["from-env.test"]})
    env = {**netjail.env, "NETJAIL_SETTINGS": str(env_cfg), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    result = netjail.run("-d", "-c", "true", env=env)
    assert result.returncode == 0 and str(env_cfg) in result.stderr

    env.pop("NETJAIL_SETTINGS")
    result = netjail.run("-d", "-c", "true", env=env)
    assert result.returncode == 0 and str(REPO / "configs" / "default.json") in result.stderr

    user_cfg = tmp_path / "xdg" / "netjail" / "settings.json"
    user_cfg.parent.mkdir(parents=True)
    user_cfg.write_text(env_cfg.read_text())
    result = netjail.run("-d", "-c", "true", env=env)
    assert result.returncode == 0 and str(user_cfg) in result.stderr


def test_debug_shows_bwrap_arguments_and_decisions(netjail: Netjail, http_origin) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-d", "-s", str(cfg), "-c", f"curl -sS -o /dev/null http://other.test:{http_origin.port}/"
    )
    assert "--die-with-parent" in result.stderr and "--unshare-pid" in result.stderr
    assert "other.test" in result.stderr and "not_allowed" in result.stderr


def test_missing_bwrap_is_125_before_anything_runs(netjail: Netjail) -> None:
    env = {**netjail.env, "PATH": "/nonexistent"}
    result = netjail.run("-s", str(netjail.settings()), "-c", "touch ran", env=env)
    assert result.returncode == 125 and "bwrap" in result.stderr
    assert not (netjail.work / "ran").exists()


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _still_running(pids: list[int]) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists()]


def _process_args() -> str:
    """Every process's command line, one a line (each line starts with a newline, for whole-name matches)."""
    lines = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout.splitlines()
    return "".join(f"\n{line.strip()}" for line in lines)


def test_sigint_reaches_the_command_and_the_run_lasts_as_long_as_it_does(netjail: Netjail) -> None:
    """A Ctrl-C (here sent to netjail, as a terminal does without the relay) is the command's to handle: no grace
    period, no kill, the command's own exit status."""
    script = (
        "trap 'touch interrupted' INT; touch started; while [ ! -e interrupted ]; do sleep 0.1; done; exit 7"
    )
    proc = netjail.popen("-s", str(netjail.settings()), "-c", script)
    assert wait_until((netjail.work / "started").exists), "the command never started"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 7, stderr
    assert (netjail.work / "interrupted").exists()
    end = json.loads((netjail.latest_run() / "flows.jsonl").read_text().splitlines()[-1])
    assert end["reason"] == "exited" and end["exit_status"] == 7


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_is_forwarded_and_nothing_is_left(netjail: Netjail, signum: int) -> None:
    marker = f"netjail-test-{os.getpid()}-{signum}"
    cfg = netjail.settings()
    proc = netjail.popen(
        "-s", str(cfg), "-c", f"touch started; setsid sleep 300 & exec -a {marker} sleep 300"
    )
    assert wait_until((netjail.work / "started").exists), "the command never started"
    # after `touch started` the shell still forks the setsid'd sleep and then execs the marked one (the shell's
    # own command line names the marker too, so look for a process that starts with it)
    assert wait_until(lambda: f"\n{marker} " in _process_args()), "the marked sleep never started"
    family = _descendants(proc.pid)
    assert family, "the sandbox should be running"
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, stderr
    assert wait_until(lambda: not _still_running(family)), f"left running: {_still_running(family)}"
    assert marker not in _process_args()
    end = json.loads((netjail.latest_run() / "flows.jsonl").read_text().splitlines()[-1])
    assert end["reason"] == "interrupted" and end["signal"] == signum
    assert not RunDir(netjail.latest_run()).proxy_dir.exists()


def test_command_that_ignores_sigterm_is_killed_after_the_grace_period(netjail: Netjail) -> None:
    proc = netjail.popen(
        "-s", str(netjail.settings()), "-c", "trap '' TERM; touch started; while :; do sleep 0.1; done"
    )
    assert wait_until((netjail.work / "started").exists), "the command never started"
    family = _descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert wait_until(lambda: not _still_running(family)), f"left running: {_still_running(family)}"


def test_sigkill_of_netjail_takes_the_sandbox_down(netjail: Netjail) -> None:
    proc = netjail.popen("-s", str(netjail.settings()), "-c", "touch started; sleep 300")
    assert wait_until((netjail.work / "started").exists), "the command never started"
    family = _descendants(proc.pid)
    killed_run = netjail.latest_run()
    assert RunDir(killed_run).proxy_dir.exists(), (
        "the CA key exists while the run lasts (under the live root)"
    )
    proc.kill()
    proc.wait(timeout=10)
    assert wait_until(lambda: not _still_running(family)), f"left running: {_still_running(family)}"
    # the next run sweeps what the killed one left: its CA key, and its record is closed
    assert netjail.run("-s", str(netjail.settings()), "-c", "true").returncode == 0
    assert not RunDir(killed_run).proxy_dir.exists()
    end = json.loads((killed_run / "flows.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "run_end" and end["reason"] == "interrupted"


def test_proxy_killed_mid_run_stops_the_sandbox_with_125(netjail: Netjail, http_origin) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    url = f"http://allowed.test:{http_origin.port}/"
    proc = netjail.popen(
        "-s", str(cfg), "-c",
        f"curl -sS -o /dev/null {url} && touch started; sleep 300",
    )  # fmt: skip
    assert wait_until((netjail.work / "started").exists), "the command never started"
    proxies = [
        p
        for p in _descendants(proc.pid)
        if "netjail.proxy.process" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
    ]
    assert len(proxies) == 1
    family = _descendants(proc.pid)
    os.kill(proxies[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 125, stderr
    assert "proxy" in stderr
    assert wait_until(lambda: not _still_running(family)), f"left running: {_still_running(family)}"
    end = json.loads((netjail.latest_run() / "flows.jsonl").read_text().splitlines()[-1])
    assert end["reason"] == "proxy_failed" and end["exit_status"] == 125


def test_unwritable_state_dir_is_125_and_the_command_never_runs(netjail: Netjail) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes through directory permissions; tested as the non-root user")
    netjail.state.mkdir()
    netjail.state.chmod(0o500)
    result = netjail.run("-s", str(netjail.settings()), "-c", "touch ran")
    assert result.returncode == 125, result.explain()
    assert not (netjail.work / "ran").exists()


def test_unwritable_state_dir_as_root_via_read_only_mount(netjail: Netjail) -> None:
    """R2 for root: a read-only file system (a read-only bind in a private mount namespace)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a mount namespace")
    netjail.state.mkdir()
    script = f'mount --bind {netjail.state} {netjail.state} && mount -o remount,bind,ro {netjail.state} && exec "$@"'
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", netjail_executable(), "-s", str(netjail.settings()), "-c", "touch ran"],
        cwd=netjail.work, env=netjail.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 125, proc.stderr
    assert "Read-only" in proc.stderr or "read-only" in proc.stderr
    assert not (netjail.work / "ran").exists()


def test_concurrent_runs_keep_their_records_apart(netjail: Netjail, http_origin) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    procs = [
        netjail.popen(
            "-s", str(cfg), "-c", f"curl -sS -o /dev/null http://allowed.test:{http_origin.port}/run-{i}"
        )
        for i in range(10)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    runs = [d for d in (netjail.state / "runs").iterdir() if d.is_dir() and not d.is_symlink()]
    assert len(runs) == 10
    for run_dir in runs:
        lines = [json.loads(line) for line in (run_dir / "flows.jsonl").read_text().splitlines()]
        flows = [r for r in lines if r["event"] == "flow"]
        assert len(flows) == 1
        assert lines[0]["command"].endswith(flows[0]["path"])
