"""jail/credentials.py and the environment: what the command sees of each credential, decided before it starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netjail.jail.credentials import CredentialError, prepare_credentials
from netjail.jail.environment import masked_environment
from netjail.settings import load_settings

TOKEN = "ghp_" + "Zq3" * 12


def settings(tmp_path: Path, credentials: dict) -> object:
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {
                "network": {"allowedDomains": ["api.example.com", "*.other.com"], "deniedDomains": []},
                "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []},
                "credentials": credentials,
            }
        )
    )
    return load_settings(path).settings


def test_a_masked_variable_gets_a_placeholder_and_its_inject_hosts_default_to_allowed_domains(
    tmp_path: Path,
) -> None:
    s = settings(
        tmp_path, {"envVars": [{"name": "GH_TOKEN", "mode": "mask"}, {"name": "DB", "mode": "deny"}]}
    )
    plan = prepare_credentials(s, {"GH_TOKEN": TOKEN, "DB": "x"}, tmp_path, tmp_path / "masked")  # type: ignore[arg-type]
    placeholder = plan.env["GH_TOKEN"]
    assert placeholder != TOKEN and len(placeholder) == len(TOKEN) and plan.withheld == ["DB"]
    (credential,) = plan.credentials
    assert credential.real == TOKEN and [p.source for p in credential.inject_hosts] == [
        "api.example.com",
        "*.other.com",
    ]
    env = masked_environment({"GH_TOKEN": TOKEN, "DB": "x", "PATH": "/bin"}, plan.env, plan.withheld)
    assert env == {"GH_TOKEN": placeholder, "PATH": "/bin"}
    assert TOKEN not in json.dumps(plan.describe())


def test_an_unset_masked_variable_stays_unset(tmp_path: Path) -> None:
    s = settings(tmp_path, {"envVars": [{"name": "GH_TOKEN", "mode": "mask"}]})
    plan = prepare_credentials(s, {}, tmp_path, tmp_path / "masked")  # type: ignore[arg-type]
    assert plan.env == {} and plan.credentials == []


def test_a_masked_file_copy_holds_the_placeholder_in_place_of_the_capture(tmp_path: Path) -> None:
    real = tmp_path / "creds.json"
    real.write_text(json.dumps({"user": "me", "token": TOKEN}))
    s = settings(tmp_path, {"files": [{"path": str(real), "mode": "mask", "extract": '"token": "([^"]+)"'}]})
    plan = prepare_credentials(s, {}, tmp_path, tmp_path / "masked")  # type: ignore[arg-type]
    ((path, copy),) = plan.files
    masked = json.loads(copy.read_text())
    assert path == real and masked["user"] == "me" and masked["token"] == plan.credentials[0].placeholder
    assert copy.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("action", "withheld"), [("deny", True), ("warn", True)])
def test_no_match_withholds_the_variable_and_warn_says_so(
    tmp_path: Path, action: str, withheld: bool
) -> None:
    entry = {"name": "GH_TOKEN", "mode": "mask", "extract": r"^xoxb-(\w+)$", "onExtractNoMatch": action}
    plan = prepare_credentials(
        settings(tmp_path, {"envVars": [entry]}), {"GH_TOKEN": TOKEN}, tmp_path, tmp_path / "m"
    )  # type: ignore[arg-type]
    assert ("GH_TOKEN" in plan.withheld) is withheld and "GH_TOKEN" not in plan.env
    assert bool(plan.warnings) is (action == "warn") and TOKEN not in " ".join(plan.warnings)


def test_no_match_refuses_the_run_by_default_without_showing_the_value(tmp_path: Path) -> None:
    entry = {"name": "GH_TOKEN", "mode": "mask", "extract": r"^xoxb-(\w+)$"}
    with pytest.raises(CredentialError) as info:
        prepare_credentials(
            settings(tmp_path, {"envVars": [entry]}), {"GH_TOKEN": TOKEN}, tmp_path, tmp_path / "m"
        )  # type: ignore[arg-type]
    assert "Fix:" in str(info.value) and TOKEN not in str(info.value)
