"""The jail's view (ATTACKS.md F10, F11, S2): links a run planted for the next one, other runs' state, and
credentials inside inherited values. Each attack beside a harmless control, through the real netjail binary."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from netjail.records.rundir import RunDir
from tests.support.netjail import Netjail, netjail_executable
from tests.support.servers import Origin
from tests.support.wait import wait_until

pytestmark = pytest.mark.nonroot


# -- F10: an allowWrite entry a previous run turned into a symlink ------------------------------------------------


def test_f10_a_link_planted_by_one_run_is_refused_by_the_next(netjail: Netjail, tmp_path: Path) -> None:
    (netjail.work / "R" / "sub" / "build").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    cfg = netjail.settings(filesystem={"allowWrite": ["R", "R/sub/build"]})
    # first run: a directory below the writable R swapped for one whose `build` points outside
    swap = f"mv R/sub R/old && mkdir R/sub && ln -s {outside} R/sub/build && echo swapped"
    first = netjail.run("-s", str(cfg), "-c", swap)
    assert first.returncode == 0 and first.stdout.strip() == "swapped", first.explain()
    # second run, same settings: refused before anything runs, and the outside directory is untouched
    second = netjail.run("-s", str(cfg), "-c", "echo pwned > R/sub/build/planted; echo ran")
    assert second.returncode == 125, second.explain()
    assert "ran" not in second.stdout
    for part in (str(cfg), "allowWrite", "'R/sub/build'", str(outside), "Fix:"):
        assert part in second.stderr, second.explain()
    assert list(outside.iterdir()) == []
    # the same with the parent swapped for a link
    (netjail.work / "R" / "sub" / "build").unlink()
    (outside / "build").mkdir()
    (netjail.work / "R" / "sub").rmdir()
    (netjail.work / "R" / "sub").symlink_to(outside)
    third = netjail.run("-s", str(cfg), "-c", "echo pwned > R/sub/build/planted")
    assert third.returncode == 125 and "'R/sub/build'" in third.stderr, third.explain()
    assert list((outside / "build").iterdir()) == []


def test_f10_control_nested_entries_and_a_users_own_top_level_link_still_work(
    netjail: Netjail, tmp_path: Path
) -> None:
    (netjail.work / "R" / "sub" / "build").mkdir(parents=True)
    data = tmp_path / "data"
    data.mkdir()
    home = netjail.work / "home"  # visible inside (read-only: the working directory), so the link is followed
    home.mkdir()
    (home / ".cache").symlink_to(data)  # the user's own link, in no writable root
    cfg = netjail.settings(filesystem={"allowWrite": ["R", "R/sub/build", str(home / ".cache")]})
    result = netjail.run(
        "-s", str(cfg), "-c", f"echo built > R/sub/build/out && echo cached > {home}/.cache/entry && echo ok"
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.explain()
    assert (netjail.work / "R" / "sub" / "build" / "out").read_text() == "built\n"
    assert (data / "entry").read_text() == "cached\n"


# -- F11: other runs' state ---------------------------------------------------------------------------------------

# The attacker: waits (FIFO) until the victim runs, then tries every path in `targets`, written meanwhile.
PROBE = r"""
touch up; cat go >/dev/null
while read -r path; do
  if cat "$path" >/dev/null 2>&1; then echo "READ $path"; fi
  if [ -d "$path" ] && [ -n "$(ls -A "$path" 2>/dev/null)" ]; then echo "LISTED $path"; fi
done < targets
echo probed
"""


def test_f11_a_run_sees_no_other_runs_key_records_or_default_history(
    netjail: Netjail, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / ".local" / "state").mkdir(parents=True)
    base_env = {k: v for k, v in netjail.env.items() if not k.startswith(("XDG_", "NETJAIL_STATE_DIR"))}
    base_env["HOME"] = str(home)
    victim_state, attacker_state = tmp_path / "victim-state", tmp_path / "attacker-state"
    victim_env = {**base_env, "NETJAIL_STATE_DIR": str(victim_state)}
    attacker_env = {**base_env, "NETJAIL_STATE_DIR": str(attacker_state)}
    default_history = home / ".local" / "state" / "netjail"
    cfg = netjail.settings(filesystem={"allowWrite": [".", str(tmp_path)]})  # all of tmp_path is readable
    # history: one run in the default state directory, one earlier run in the victim's custom one
    assert netjail.run("-s", str(cfg), "-c", "true", env=base_env).returncode == 0
    assert netjail.run("-s", str(cfg), "-c", "true", env=victim_env).returncode == 0
    old_default_run = next(p for p in (default_history / "runs").iterdir() if p.name != "latest")
    # controls: ordinary files beside each state directory
    (tmp_path / "beside-victim.txt").write_text("ordinary\n")
    (home / ".local" / "state" / "beside-history.txt").write_text("ordinary\n")

    for fifo in ("go", "victim-go"):
        os.mkfifo(netjail.work / fifo)
    attacker = subprocess.Popen(
        [netjail_executable(), "-s", str(cfg), "-c", PROBE],
        cwd=netjail.work, env=attacker_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    victim = None
    try:
        assert wait_until((netjail.work / "up").exists), "the attacker's jail never came up"
        # the victim starts only now, after the attacker's mounts are fixed
        victim = subprocess.Popen(
            [netjail_executable(), "-s", str(cfg), "-c", "touch victim-up; cat victim-go >/dev/null"],
            cwd=netjail.work, env=victim_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert wait_until((netjail.work / "victim-up").exists), "the victim never started"
        victim_run = (victim_state / "runs" / "latest").resolve()
        key = (
            RunDir(victim_run).proxy_dir / "confdir" / "mitmproxy-ca.pem"
        )  # mitmproxy's: key and certificate
        assert key.exists(), "the victim's CA key exists on the host while it runs"
        targets = _probe_targets(tmp_path, victim_run) + [str(key), str(old_default_run / "flows.jsonl")]
        (netjail.work / "targets").write_text("\n".join(targets))
        with open(netjail.work / "go", "w") as go:
            go.write("go\n")
        out, err = attacker.communicate(timeout=60)
    finally:
        if victim is not None:
            with open(netjail.work / "victim-go", "w") as release:
                release.write("go\n")
            victim.communicate(timeout=60)
        if attacker.poll() is None:
            attacker.kill()
            attacker.communicate()
    assert attacker.returncode == 0 and "probed" in out, f"{out}\n{err}"
    read = {line.split(" ", 1)[1] for line in out.splitlines() if line.startswith(("READ ", "LISTED "))}
    assert read == {
        str(tmp_path / "beside-victim.txt"),
        str(home / ".local" / "state" / "beside-history.txt"),
    }, out


def _probe_targets(tmp_path: Path, victim_run: Path) -> list[str]:
    """What the attacker tries: the controls, the default history, the victim's state directory and run."""
    home = tmp_path / "home"
    targets = [
        str(tmp_path / "beside-victim.txt"),
        str(home / ".local" / "state" / "beside-history.txt"),
        str(home / ".local" / "state" / "netjail"),
        str(home / ".local" / "state" / "netjail" / "runs"),
        str(tmp_path / "victim-state"),
        str(tmp_path / "victim-state" / "runs"),
    ]
    return targets + [str(victim_run), str(victim_run / "flows.jsonl"), str(RunDir(victim_run).proxy_dir)]


# -- S2: credentials inside inherited values ----------------------------------------------------------------------


def test_s2_credentials_in_an_index_url_are_not_passed_in(netjail: Netjail, http_origin: Origin) -> None:
    index = f"http://allowed.test:{http_origin.port}/simple"
    env = {**netjail.env, "PIP_INDEX_URL": index.replace("http://", "http://user:s3cret@")}
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    command = (
        'echo "$PIP_INDEX_URL"; grep -c s3[c]ret /proc/self/environ; curl -sS -o /dev/null "$PIP_INDEX_URL"'
    )
    result = netjail.run("-d", "-s", str(cfg), "-c", command, env=env)
    assert result.returncode == 0, result.explain()
    assert result.stdout.splitlines()[:2] == [index, "0"], result.explain()
    assert "s3cret" not in (result.run_dir / "flows.jsonl").read_text()
    assert "s3cret" not in result.stderr  # the debug log, which names what was scrubbed
    scrubbed = [line for line in result.stderr.splitlines() if "env.scrubbed" in line]
    assert scrubbed and "PIP_INDEX_URL" in scrubbed[0], result.stderr
    assert any(f["host"] == "allowed.test" for f in result.flows), result.records


def test_s2_control_envpassthrough_passes_the_value_whole(netjail: Netjail) -> None:
    secret_url = "https://user:s3cret@index.test/simple"
    env = {**netjail.env, "PIP_INDEX_URL": secret_url}
    cfg = netjail.settings(envPassthrough=["PIP_INDEX_URL"])
    result = netjail.run("-s", str(cfg), "-c", 'echo "$PIP_INDEX_URL"', env=env)
    assert result.returncode == 0 and result.stdout.strip() == secret_url, result.explain()
    assert json.loads((result.run_dir / "flows.jsonl").read_text().splitlines()[-1])["event"] == "run_end"


def test_s1_tool_settings_pass_credentials_are_withheld_and_named_only(netjail: Netjail) -> None:
    env = {
        **netjail.env,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",  # a tool setting on the default list: passes
        "NPM_TOKEN": "npm_w1thheldvalue",  # the same family's credential: withheld
        "npm_config__authToken": "npm_w1thheldvalue",  # and the prefix that would have carried it
    }
    script = 'echo "${PIP_DISABLE_PIP_VERSION_CHECK:-unset} ${NPM_TOKEN:-unset}"; env | grep -c w1thh[e]ld'
    result = netjail.run("-d", "-s", str(netjail.settings()), "-c", script, env=env)
    assert result.stdout.splitlines() == ["1 unset", "0"], result.explain()
    withheld = next(line for line in result.stderr.splitlines() if "env.withheld" in line)
    assert "NPM_TOKEN" in withheld and "npm_config__authToken" in withheld, withheld  # names, for -d
    assert "w1thheld" not in result.stderr  # never the values
    shown = netjail.command("explain", "-s", str(netjail.settings()), env=env)
    assert "NPM_TOKEN" in shown.stdout and "w1thheld" not in shown.stdout
