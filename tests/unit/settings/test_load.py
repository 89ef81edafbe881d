"""Finding and loading a file: the bundled files, strict JSON, presets, no side effect."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from netjail.settings import BUNDLED_DEFAULT, SettingsError, find_settings_path, load_settings, presets

from .settings_files import EVERY_KEY, REPO, case, load, minimal, refused, save, with_

REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, data, field, words in the message)
    ("null", case("network.resolver", None), "network.resolver", "null is not a value here"),
    (
        "unknown preset",
        case("network.allowedDomains", ["example.com", "@foo"]),
        "network.allowedDomains[1]",
        "unknown preset '@foo'. Fix: known presets are @netjail, @npm, @pip",
    ),
    (
        "index after preset",
        case("network.allowedDomains", ["@pip", "*.com"]),
        "network.allowedDomains[1]",
        "*.com",
    ),
]


@pytest.mark.parametrize(("data", "field", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals(tmp_path: Path, data: dict[str, Any], field: str, words: str) -> None:
    error = refused(tmp_path, data)
    assert error.field == field, str(error)
    assert words in str(error), str(error)


def test_bundled_default_denies_all_network() -> None:
    loaded = load_settings(BUNDLED_DEFAULT, "bundled")
    assert loaded.origin == "bundled"
    assert loaded.settings.network.allowed_domains == []
    assert loaded.settings.filesystem.allow_write == ["."]
    assert "~/.ssh" in loaded.settings.filesystem.deny_read
    assert loaded.warnings == () and loaded.expansions == {}


def test_example_expands_pip() -> None:
    loaded = load_settings(REPO / "configs" / "example.json")
    hosts = loaded.expansions["@pip"]
    sources = [p.source for p in loaded.settings.network.allowed_domains]
    assert hosts and sources == [*hosts, "example.com", "*.example.org"]
    assert "@pip" not in loaded.effective_json()


def test_no_registry_host_in_repository_files() -> None:
    from pip._internal.models.index import PyPI

    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    paths = [REPO / name for name in tracked.decode().split("\0") if name] or [
        *REPO.joinpath("configs").iterdir()
    ]
    for path in paths:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        assert PyPI.netloc not in text and PyPI.file_storage_domain not in text, path


def test_effective_json_round_trips(tmp_path: Path) -> None:
    data = json.loads(EVERY_KEY.read_text())
    for key in ("httpProxyPort", "socksProxyPort", "mitmProxy", "parentProxy"):
        del data["network"][key]
    data["network"]["allowedDomains"].insert(0, "@pip")
    data["network"]["hosts"] = {"pinned.test": "127.0.0.1"}
    first = load(tmp_path, data)
    effective = json.loads(first.effective_json())
    assert effective["network"]["allowedDomains"][: len(first.expansions["@pip"])] == first.expansions["@pip"]
    again = load_settings(save(tmp_path, first.effective_json(), "effective.json"))
    assert again.settings == first.settings
    assert again.effective_json() == first.effective_json()


def test_loading_has_no_side_effect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path, with_(minimal(), "network.allowedDomains", ["@pip", "example.com"]))
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    load_settings(path)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('{\n  "network": {,\n}', "(file)", "invalid JSON at line 2, column 15"),
        ("[1, 2]", "(file)", "the file holds an array, not a JSON object"),
        ("  \n", "(file)", "the file is empty"),
        ('{"network": {}, "network": {}}', "(file)", "the key 'network' appears twice"),
        ('{"mandatoryDenySearchDepth": NaN}', "(file)", "NaN is not valid JSON"),
    ],
)
def test_unreadable_files(tmp_path: Path, text: str, field: str, message: str) -> None:
    error = refused(tmp_path, text)
    assert (error.field, message in error.problem) == (field, True), str(error)


def test_missing_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"\(file\): cannot read the settings file \(No such file"):
        load_settings(tmp_path / "absent.json")
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(SettingsError, match=r"\(file\): the file is not UTF-8"):
        load_settings(latin1)


def test_preset_failure_names_the_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presets, "ETC_NPMRC", tmp_path / "none")
    environ = {"HOME": str(tmp_path), "PATH": "", "NPM_CONFIG_PREFIX": str(tmp_path)}
    path = save(tmp_path, case("network.allowedDomains", ["example.com", "@npm"]))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ=environ)
    assert info.value.field == "network.allowedDomains[1]"
    assert "Fix: set NPM_CONFIG_REGISTRY" in str(info.value)


@pytest.mark.parametrize(
    ("index", "words"),
    [
        ("http://bad..example.com/", "preset @pip produced 'bad..example.com'"),
        ("https://*.example.com/", "may name only exact hosts and IP addresses"),
    ],
)
def test_preset_producing_a_bad_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: str, words: str
) -> None:
    monkeypatch.setattr(presets, "ETC_PIP_CONF", tmp_path / "none")
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path), "PIP_INDEX_URL": index}
    path = save(tmp_path, case("network.allowedDomains", ["example.com", "@pip"]))
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ=environ)
    assert info.value.field == "network.allowedDomains[1]" and words in str(info.value)


def test_find_settings_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    flag = tmp_path / "flag.json"
    env = {"HOME": str(home), "NETJAIL_SETTINGS": str(tmp_path / "env.json")}
    assert find_settings_path(flag, env) == (flag, "flag")
    assert find_settings_path(None, env) == (tmp_path / "env.json", "env")
    env = {"HOME": str(home)}
    assert find_settings_path(None, env) == (BUNDLED_DEFAULT, "bundled")
    user = home / ".config" / "netjail" / "settings.json"
    user.parent.mkdir(parents=True)
    user.symlink_to(tmp_path / "dangling")  # there but broken: an error later, never a silent fall-back
    assert find_settings_path(None, env) == (user, "user")
    xdg = tmp_path / "xdg"
    assert find_settings_path(None, env | {"XDG_CONFIG_HOME": str(xdg)}) == (BUNDLED_DEFAULT, "bundled")
    (xdg / "netjail").mkdir(parents=True)
    (xdg / "netjail" / "settings.json").write_text("{}")
    assert find_settings_path(None, env | {"XDG_CONFIG_HOME": str(xdg)}) == (
        xdg / "netjail" / "settings.json",
        "user",
    )
    assert find_settings_path(None, env | {"XDG_CONFIG_HOME": "relative"}) == (user, "user")  # XDG: ignored


def test_bundled_default_is_the_repositorys() -> None:
    assert BUNDLED_DEFAULT == REPO / "configs" / "default.json" and BUNDLED_DEFAULT.is_file()
