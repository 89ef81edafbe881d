"""Settings that contradict themselves, through the real binary: a warning at the start of the run naming both
entries and the fix, and the run does what the warning says it does. Each beside the settings that say one thing."""

from __future__ import annotations

from pathlib import Path

from tests.support.netjail import Netjail

TOKEN = "npm_" + "Q" * 36


def npmrc(netjail: Netjail) -> Path:
    path = netjail.tmp_path / "npmrc"
    path.write_text(f"//registry.corp.test/:_authToken={TOKEN}\n")
    return path


def masked(path: Path) -> dict:
    return {"files": [{"path": str(path), "mode": "mask", "extract": r"_authToken=(\S+)"}]}


def test_a_masked_file_also_in_deny_read_is_seen_masked_and_said_so(netjail: Netjail) -> None:
    rc = npmrc(netjail)
    cfg = netjail.settings(filesystem={"denyRead": [str(rc)]}, credentials=masked(rc))
    result = netjail.run("-s", str(cfg), "-c", f"cat {rc}")
    assert result.returncode == 0, result.explain()
    assert f"filesystem.denyRead[0]: '{rc}' hides the file credentials.files[0] masks" in result.stderr
    assert result.stdout.startswith("//registry.corp.test/:_authToken=") and TOKEN not in result.stdout
    control = netjail.run("-s", str(netjail.settings(credentials=masked(rc))), "-c", f"cat {rc}")
    assert control.returncode == 0 and "credentials.files" not in control.stderr, control.explain()
    assert TOKEN not in control.stdout and "_authToken=" in control.stdout


def test_allow_write_inside_deny_read_is_bound_and_said_so(netjail: Netjail) -> None:
    (netjail.work / "top" / "proj").mkdir(parents=True)
    cfg = netjail.settings(filesystem={"denyRead": ["top"], "allowWrite": [".", "top/proj"]})
    result = netjail.run("-s", str(cfg), "-c", "echo x > top/proj/f && cat top/proj/f")
    assert result.returncode == 0 and result.stdout == "x\n", result.explain()
    assert "filesystem.allowWrite[1]: 'top/proj' lies inside filesystem.denyRead 'top'" in result.stderr
    said = netjail.settings(
        filesystem={"denyRead": ["top"], "allowWrite": [".", "top/proj"], "allowRead": ["top/proj"]}
    )
    control = netjail.run("-s", str(said), "-c", "cat top/proj/f")
    assert control.returncode == 0 and "lies inside" not in control.stderr, control.explain()


def test_an_inject_host_inside_exclude_domains_is_refused_before_anything_runs(netjail: Netjail) -> None:
    rc = npmrc(netjail)
    credentials = {"files": [{**masked(rc)["files"][0], "injectHosts": ["registry.corp.test"]}]}
    network = {
        "allowedDomains": ["registry.corp.test"],
        "tlsTerminate": {"excludeDomains": ["registry.corp.test"]},
    }
    marker = netjail.work / "ran"
    result = netjail.run(
        "-s", str(netjail.settings(network, credentials=credentials)), "-c", f"touch {marker}"
    )
    assert result.returncode == 125 and not marker.exists(), result.explain()
    assert "excludeDomains" in result.stderr and TOKEN not in result.stderr
    control = netjail.run(
        "-s", str(netjail.settings({"allowedDomains": ["registry.corp.test"]}, credentials=credentials)),
        "-c", f"touch {marker}",
    )  # fmt: skip
    assert control.returncode == 0 and marker.exists(), control.explain()


def test_a_masked_file_in_a_hidden_directory_shows_alone_and_is_no_contradiction(netjail: Netjail) -> None:
    hidden = netjail.tmp_path / "config"
    hidden.mkdir()
    (hidden / "other-secret").write_text("kept hidden\n")
    rc = hidden / "npmrc"
    rc.write_text(f"//registry.corp.test/:_authToken={TOKEN}\n")
    cfg = netjail.settings(filesystem={"denyRead": [str(hidden)]}, credentials=masked(rc))
    result = netjail.run("-s", str(cfg), "-c", f"ls {hidden}; cat {rc}; cat {hidden}/other-secret")
    assert result.returncode == 1, result.explain()  # the other file is not there to read
    assert result.stdout.startswith("npmrc\n//registry.corp.test/:_authToken=") and TOKEN not in result.stdout
    assert "kept hidden" not in result.stdout and "credentials.files" not in result.stderr
