"""`netjail config …` and shell completion, the real command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from netjail.settings.load import read_json
from tests.support.netjail import REPO, Netjail, netjail_executable

pytestmark = pytest.mark.nonroot

README_SETTINGS = {
    "network": {
        "allowedDomains": ["github.com", "*.githubusercontent.com", "dns.google", "mirror.internal"],
        "deniedDomains": ["gist.github.com"],
        "hosts": {"mirror.internal": "10.1.2.3"},
    },
    "filesystem": {"denyRead": ["~/.ssh"], "allowWrite": ["."], "denyWrite": []},
}


def netjail_cmd(
    netjail: Netjail, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return netjail.command(*args, env=env)


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path


def test_check_prints_one_warning_per_lint(netjail: Netjail, tmp_path: Path) -> None:
    cfg = write(tmp_path / "s.json", README_SETTINGS)
    done = netjail_cmd(netjail, "config", "check", str(cfg))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 4, done.stdout
    assert warnings[0].startswith('warning: network.allowedDomains "*.githubusercontent.com": ')
    assert "shared" in warnings[0]
    assert warnings[1].startswith('warning: network.allowedDomains "dns.google": ')
    assert warnings[2].startswith('warning: network.allowedDomains "*.githubusercontent.com": ')
    assert "gist.githubusercontent.com, a paste site" in warnings[2]
    assert warnings[3].startswith('warning: network.hosts "mirror.internal": ')
    assert all(". Fix: " in w for w in warnings)
    assert done.stdout.splitlines()[-1] == f"{cfg}: valid, 4 warnings"


def test_check_shows_a_preset_expansion(netjail: Netjail, tmp_path: Path) -> None:
    (tmp_path / "pip.conf").write_text("[global]\nindex-url = https://mirror.example/simple\n")
    cfg = write(
        tmp_path / "s.json", {**README_SETTINGS, "network": {"allowedDomains": ["@pip"], "deniedDomains": []}}
    )
    done = netjail_cmd(
        netjail,
        "config",
        "check",
        str(cfg),
        env={**netjail.env, "PIP_CONFIG_FILE": str(tmp_path / "pip.conf")},
    )
    assert done.returncode == 0, done.stderr
    assert "preset: @pip -> mirror.example" in done.stdout
    assert done.stdout.splitlines()[-1] == f"{cfg}: valid, no warnings"


def test_check_refuses_as_a_run_does(netjail: Netjail, tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "bad.json",
        {"network": {"allowedDomains": ["*.co.uk"], "deniedDomains": []}, "filesystem": {}},
    )
    done = netjail_cmd(netjail, "config", "check", str(cfg))
    legacy = subprocess.run([str(Path(netjail_executable()).parent / "python"), "-m", "netjail.settings", "--check", str(cfg)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == legacy.returncode == 125
    assert done.stderr == f"netjail: {legacy.stderr}"


def test_schema_is_the_published_one(netjail: Netjail) -> None:
    done = netjail_cmd(netjail, "config", "schema")
    assert done.returncode == 0
    assert json.loads(done.stdout) == json.loads((REPO / "docs" / "settings.schema.json").read_text())


def test_init_writes_a_commented_file_that_loads(netjail: Netjail, tmp_path: Path) -> None:
    out = tmp_path / "settings.json"
    done = netjail_cmd(netjail, "config", "init", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("// netjail settings (JSONC")
    assert netjail_cmd(netjail, "config", "check", str(out)).returncode == 0
    again = netjail_cmd(netjail, "config", "init", "-o", str(out))
    assert again.returncode == 1 and "cannot write" in again.stderr


def test_init_from_srt_round_trips_with_a_verdict_per_key(netjail: Netjail, tmp_path: Path) -> None:
    srt = REPO / "tests" / "data" / "srt-every-key.json"
    out = tmp_path / "srt.jsonc"
    done = netjail_cmd(netjail, "config", "init", "--from-srt", str(srt), "-o", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert read_json(out) == json.loads(srt.read_text())  # the same values, comments aside
    assert "// netjail: REFUSED: an external proxy would replace netjail's" in text
    assert "// netjail: ignored (warned):" in text and "// netjail: honoured:" in text
    assert "unknown key" not in text


def test_diff_says_what_a_change_allows(netjail: Netjail, tmp_path: Path) -> None:
    before = write(tmp_path / "a.json", README_SETTINGS)
    network = {**README_SETTINGS["network"], "allowedDomains": ["github.com", "raw.githubusercontent.com"]}
    after = write(tmp_path / "b.json", {**README_SETTINGS, "network": network})
    done = netjail_cmd(netjail, "config", "diff", str(before), str(after))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "now denied: any name below githubusercontent.com, ports 443 and 80 (not in allowedDomains; was by '*.githubusercontent.com')",
        "now denied: dns.google, ports 443 and 80 (not in allowedDomains; was by 'dns.google')",
        "now denied: mirror.internal, ports 443 and 80 (not in allowedDomains; was by 'mirror.internal')",
    ]
    same = netjail_cmd(netjail, "config", "diff", str(before), str(before))
    assert same.stdout == "no change in what is allowed or denied\n"


COMMANDS = ("run", "explain", "flows", "audit", "why", "doctor", "config")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_completion_script_generates_and_completes_the_commands(netjail: Netjail, shell: str) -> None:
    script = netjail_cmd(netjail, env={**netjail.env, "_NETJAIL_COMPLETE": f"{shell}_source"})
    assert script.returncode == 0 and "_NETJAIL_COMPLETE" in script.stdout, script.stderr
    # bash and zsh give the index of the word to complete; fish gives the word itself (here empty)
    words = {"COMP_WORDS": "netjail ", "COMP_CWORD": "" if shell == "fish" else "1"}
    completed = netjail_cmd(netjail, env={**netjail.env, **words, "_NETJAIL_COMPLETE": f"{shell}_complete"})
    assert completed.returncode == 0, completed.stderr
    for command in COMMANDS:
        assert command in completed.stdout, (command, completed.stdout)
    sub = {"COMP_WORDS": "netjail config ", "COMP_CWORD": "" if shell == "fish" else "2"}
    nested = netjail_cmd(netjail, env={**netjail.env, **sub, "_NETJAIL_COMPLETE": f"{shell}_complete"})
    for command in ("check", "schema", "init", "diff"):
        assert command in nested.stdout, nested.stdout
