"""Settings that contradict themselves are warned about at load, one line each naming both entries and the fix."""

from __future__ import annotations

import json
from pathlib import Path

from netjail.settings import load_settings


def _load(tmp_path: Path, network: dict, filesystem: dict, environ: dict[str, str]):
    path = tmp_path / "settings.json"
    fs = {"denyRead": [], "allowWrite": [], "denyWrite": [], **filesystem}
    path.write_text(json.dumps({"network": {"deniedDomains": [], **network}, "filesystem": fs}))
    return load_settings(path, environ=environ)


def test_a_preset_whose_registry_file_is_hidden(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".npmrc").write_text("registry=https://registry.corp.test/\n//registry.corp.test/:_authToken=x\n")
    monkeypatch.chdir(tmp_path)
    environ = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    hidden = _load(tmp_path, {"allowedDomains": ["@npm"]}, {"denyRead": ["~/.npmrc"]}, environ)
    (warning,) = [w for w in hidden.warnings if "@npm" in w]
    assert "'~/.npmrc' hides that file" in warning and '"mode": "mask"' in warning
    visible = _load(tmp_path, {"allowedDomains": ["@npm"]}, {"denyRead": ["~/.ssh"]}, environ)
    assert not [w for w in visible.warnings if "@npm" in w]  # the control


def test_allow_write_inside_deny_read_says_which_is_meant(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    environ = {"HOME": str(tmp_path)}
    inside = _load(
        tmp_path, {"allowedDomains": []}, {"denyRead": ["top"], "allowWrite": ["top/proj"]}, environ
    )
    (warning,) = inside.warnings
    assert warning.startswith("filesystem.allowWrite[0]: 'top/proj' lies inside filesystem.denyRead 'top'")
    said = _load(
        tmp_path,
        {"allowedDomains": []},
        {"denyRead": ["top"], "allowWrite": ["top/proj"], "allowRead": ["top/proj"]},
        environ,
    )
    assert said.warnings == ()


def test_a_masked_credential_file_also_in_deny_read_says_which_is_meant(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".npmrc").write_text(
        "//registry.corp.test/:_authToken=npm_0123456789abcdefghijklmnopqrstuvwxyz\n"
    )
    monkeypatch.chdir(tmp_path)
    environ = {"HOME": str(home), "PATH": "/usr/bin:/bin"}

    def load(deny_read: list[str]):
        path = tmp_path / "settings.json"
        path.write_text(
            json.dumps(
                {
                    "network": {"allowedDomains": ["@npm"], "deniedDomains": []},
                    "filesystem": {"denyRead": deny_read, "allowWrite": [], "denyWrite": []},
                    "credentials": {"files": [{"path": "~/.npmrc", "mode": "mask"}]},
                }
            )
        )
        return load_settings(path, environ=environ)

    both = load(["~/.npmrc"])
    (warning,) = both.warnings
    assert warning.startswith("filesystem.denyRead[0]: '~/.npmrc' hides the file credentials.files[0] masks")
    assert "Fix:" in warning
    # the control: masked alone is what the preset's warning asks for, though the file is merged into denyRead
    masked = load([])
    assert masked.warnings == ()
    assert "~/.npmrc" in [str(e) for e in masked.settings.filesystem.deny_read]
