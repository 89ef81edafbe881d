"""`netjail quarantine`: an agent's legitimate new CI workflow is not just gone: the user sees it and puts it back."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.netjail import Netjail

pytestmark = pytest.mark.nonroot

WORKFLOW = "on: push\\njobs:\\n  test:\\n    runs-on: ubuntu-latest\\n"


@pytest.fixture
def quarantined(netjail: Netjail) -> dict:
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    result = netjail.run(
        "-s", str(cfg), "-c", f"mkdir -p .github/workflows; printf '{WORKFLOW}' > .github/workflows/ci.yml"
    )
    assert not (netjail.work / ".github" / "workflows").exists(), result.explain()
    (item,) = [
        json.loads(line) for line in netjail.command("quarantine", "list", "--json").stdout.splitlines()
    ]
    return item


def test_list_and_show_say_what_was_taken_and_why(netjail: Netjail, quarantined: dict) -> None:
    assert quarantined["state"] == "moved" and quarantined["record"]["path"].endswith(".github/workflows")
    assert "CI would run it" in quarantined["why"]
    shown = netjail.command("quarantine", "show", "1")
    assert shown.returncode == 0, shown.stderr
    assert "holds 1 entry" in shown.stdout and "ci.yml" in shown.stdout
    listing = netjail.command("quarantine", "list").stdout
    assert quarantined["item"] in listing and ".github/workflows" in listing


def test_restore_puts_it_back_once_and_replaces_nothing(netjail: Netjail, quarantined: dict) -> None:
    done = netjail.command("quarantine", "restore", quarantined["item"])
    assert done.returncode == 0, done.stderr
    restored = netjail.work / ".github" / "workflows" / "ci.yml"
    assert restored.read_text().startswith("on: push\n")
    assert "CI would run it" in done.stderr  # the reason it was taken, said once more
    again = netjail.command("quarantine", "restore", quarantined["item"])
    assert again.returncode == 1 and "restored already" in again.stderr
    (state,) = [
        json.loads(line)["state"]
        for line in netjail.command("quarantine", "list", "--json").stdout.splitlines()
    ]
    assert state == "restored"


def test_restore_never_replaces_what_is_there_nor_follows_a_planted_link(
    netjail: Netjail, quarantined: dict, tmp_path
) -> None:
    (netjail.work / ".github" / "workflows").mkdir(parents=True)
    refused = netjail.command("quarantine", "restore", quarantined["item"])
    assert refused.returncode == 1 and "exists; move it away first" in refused.stderr
    (netjail.work / ".github" / "workflows").rmdir()
    (netjail.work / ".github").rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(
        elsewhere, netjail.work / ".github"
    )  # a link where a directory was: the restore must not follow it
    refused = netjail.command("quarantine", "restore", quarantined["item"])
    assert refused.returncode == 1 and "not a plain directory" in refused.stderr
    assert list(elsewhere.iterdir()) == []
    (netjail.work / ".github").unlink()
    done = netjail.command(
        "quarantine", "restore", quarantined["item"], "--to", str(tmp_path / "ci-workflows")
    )
    assert done.returncode == 0 and (tmp_path / "ci-workflows" / "ci.yml").exists()  # the control


def test_unknown_items_are_told_apart(netjail: Netjail) -> None:
    nothing = netjail.command("quarantine", "show", "1")
    assert nothing.returncode == 1 and "no run has quarantined anything" in nothing.stderr
    bad = netjail.command("quarantine", "show", "x")
    assert bad.returncode == 1 and "is not an item" in bad.stderr
