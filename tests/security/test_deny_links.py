"""denyRead / denyWrite entries a previous run redirected (ATTACKS.md F1, F2, F10): a symlink planted at the entry
or at one of its parents inside a writable path, or a second name (hard link) for the file. A mask or read-only
bind covers a name, never the inode, and bwrap follows links: each attack is a first run (whose settings lack the
rule) planting, then a run with the rule trying to read or write the secret. Each beside a control that works."""

from __future__ import annotations

import pytest

from tests.support.netjail import Netjail

pytestmark = pytest.mark.nonroot


def test_a_deny_write_entry_swapped_for_a_link_is_refused(netjail: Netjail) -> None:
    (netjail.work / ".env").write_text("USER=1\n")
    plain = netjail.settings(filesystem={"allowWrite": ["."]})
    plant = "mv .env .env.real && echo decoy > decoy && ln -s decoy .env && echo planted"
    assert netjail.run("-s", str(plain), "-c", plant).stdout.strip() == "planted"
    denied = netjail.settings(filesystem={"allowWrite": ["."], "denyWrite": ["./.env"]})
    attack = netjail.run("-s", str(denied), "-c", "rm -f .env; echo PWNED > .env; echo ran")
    assert attack.returncode == 125 and "ran" not in attack.stdout, attack.explain()
    for part in (str(denied), "denyWrite", "'./.env'", str(netjail.work / ".env"), "Fix:"):
        assert part in attack.stderr, attack.explain()
    assert (netjail.work / ".env").is_symlink() and (netjail.work / ".env.real").read_text() == "USER=1\n"


def test_control_a_deny_write_entry_on_the_file_itself_is_read_only_and_the_rest_writable(
    netjail: Netjail,
) -> None:
    (netjail.work / ".env").write_text("USER=1\n")
    denied = netjail.settings(filesystem={"allowWrite": ["."], "denyWrite": ["./.env"]})
    script = "echo PWNED > .env; echo w=$?; rm -f .env; echo rm=$?; echo ok > control; echo c=$?"
    result = netjail.run("-s", str(denied), "-c", script)
    assert result.returncode == 0, result.explain()
    lines = result.stdout.split()
    assert lines[0] != "w=0" and lines[1] != "rm=0" and lines[2] == "c=0", result.explain()
    assert (netjail.work / ".env").read_text() == "USER=1\n"
    assert (netjail.work / "control").read_text() == "ok\n"


def test_a_deny_read_entry_whose_parent_was_swapped_for_a_link_is_refused(netjail: Netjail) -> None:
    (netjail.work / "conf").mkdir()
    (netjail.work / "conf" / "secret").write_text("TOPSECRET\n")
    plain = netjail.settings(filesystem={"allowWrite": ["."]})
    plant = (
        "mv conf conf.real && mkdir decoy && echo nothing > decoy/secret && ln -s decoy conf && echo planted"
    )
    assert netjail.run("-s", str(plain), "-c", plant).stdout.strip() == "planted"
    denied = netjail.settings(filesystem={"allowWrite": ["."], "denyRead": ["conf/secret"]})
    attack = netjail.run("-s", str(denied), "-c", "cat conf.real/secret; echo ran")
    assert attack.returncode == 125, attack.explain()
    assert "TOPSECRET" not in attack.stdout and "ran" not in attack.stdout
    for part in ("denyRead", "'conf/secret'", str(netjail.work / "conf"), "Fix:"):
        assert part in attack.stderr, attack.explain()


def test_control_a_deny_read_entry_with_no_link_is_masked_and_the_rest_readable(netjail: Netjail) -> None:
    (netjail.work / "conf").mkdir()
    (netjail.work / "conf" / "secret").write_text("TOPSECRET\n")
    (netjail.work / "conf" / "public").write_text("visible\n")
    denied = netjail.settings(filesystem={"allowWrite": ["."], "denyRead": ["conf/secret"]})
    result = netjail.run("-s", str(denied), "-c", "cat conf/secret; cat conf/public")
    assert "TOPSECRET" not in result.stdout and "visible" in result.stdout, result.explain()


@pytest.mark.parametrize("key", ["denyWrite", "denyRead"])
def test_a_second_name_a_run_gave_the_file_is_refused(netjail: Netjail, key: str) -> None:
    secret = netjail.work / "token.txt"
    secret.write_text("TOPSECRET\n")
    plain = netjail.settings(filesystem={"allowWrite": ["."]})
    assert (
        netjail.run("-s", str(plain), "-c", "ln token.txt alias && echo planted").stdout.strip() == "planted"
    )
    denied = netjail.settings(filesystem={"allowWrite": ["."], key: ["token.txt"]})
    attack = netjail.run("-s", str(denied), "-c", "cat alias; echo PWNED > alias; echo ran")
    assert attack.returncode == 125, attack.explain()
    assert "TOPSECRET" not in attack.stdout and "ran" not in attack.stdout
    for part in (key, str(secret), "2 names", "Fix:"):
        assert part in attack.stderr, attack.explain()
    assert secret.read_text() == "TOPSECRET\n"
    # control: once the file has a name of its own again, the rule holds and the run goes ahead
    (netjail.work / "alias").unlink()
    control = netjail.run("-s", str(denied), "-c", "cat token.txt; echo PWNED > token.txt; echo ran")
    assert control.returncode == 0 and "ran" in control.stdout, control.explain()
    if key == "denyRead":
        assert "TOPSECRET" not in control.stdout, control.explain()
    assert secret.read_text() == "TOPSECRET\n"
