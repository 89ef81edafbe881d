"""Presets: "@pip" and "@npm" read the package managers' own configuration; no host literal of a real
registry appears here (pip's defaults are read from pip in the tests too)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from netjail.net.domains import parse_pattern
from netjail.settings import presets
from netjail.settings.presets import PresetError, expand_preset, expand_presets, url_host


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home, no system files: every test says exactly what configuration exists."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(presets, "ETC_PIP_CONF", tmp_path / "etc" / "pip.conf")
    monkeypatch.setattr(presets, "ETC_NPMRC", tmp_path / "etc" / "npmrc")
    return home


def env(home: Path, **extra: str) -> dict[str, str]:
    base = {
        "HOME": str(home),
        "XDG_CONFIG_DIRS": str(home.parent / "xdg"),
        "PATH": "",
        "NPM_CONFIG_PREFIX": str(home.parent / "prefix"),
    }
    return base | extra


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pip_defaults() -> list[str]:
    from pip._internal.models.index import PyPI

    return [PyPI.netloc, PyPI.file_storage_domain]


# -- url_host ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://index.example.com/simple", "index.example.com"),
        ("https://index.example.com:443/simple/", "index.example.com"),
        ("http://index.example.com:80/", "index.example.com"),
        ("http://index.example.com:8080/simple", "index.example.com:8080"),
        ("https://user:secret@Index.Example.COM/simple", "index.example.com"),
        ("https://[2001:db8::1]:8443/simple", "[2001:db8::1]:8443"),
        ("https://[2001:db8::1]/simple", "[2001:db8::1]"),
        ("file:///opt/wheels/simple", None),
        ("  https://index.example.com/  ", "index.example.com"),
    ],
)
def test_url_host(url: str, host: str | None) -> None:
    assert url_host(url) == host


@pytest.mark.parametrize(
    "url", ["ftp://index.example.com/", "index.example.com/simple", "https:///x", "https://h:99999/"]
)
def test_url_host_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        url_host(url)


# -- expand_presets ------------------------------------------------------------------------------------


def test_plain_entries_pass_through() -> None:
    assert expand_presets(["example.com", "*.example.org"]) == (["example.com", "*.example.org"], {})


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(
        PresetError, match=r"unknown preset '@foo'; known presets are @netjail, @npm, @pip"
    ) as info:
        expand_presets(["@foo"])
    assert info.value.preset == "@foo"


def test_expansions_are_reported_once_and_in_place(home: Path) -> None:
    environ = env(home, PIP_INDEX_URL="https://index.example.com/simple")
    hosts, expansions = expand_presets(["a.example", "@pip", "b.example", "@pip"], environ)
    assert hosts == ["a.example", "index.example.com", "b.example", "index.example.com"]
    assert expansions == {"@pip": ["index.example.com"]}


# -- @pip ----------------------------------------------------------------------------------------------


def test_pip_default_index_comes_from_pip(home: Path) -> None:
    assert expand_preset("@pip", env(home)) == pip_defaults()


def test_pip_env_index_replaces_the_default(home: Path) -> None:
    environ = env(
        home,
        PIP_INDEX_URL="https://index.example.com/simple",
        PIP_EXTRA_INDEX_URL="https://extra.example.com:8443/simple http://other.example.net/",
    )
    assert expand_preset("@pip", environ) == [
        "index.example.com",
        "extra.example.com:8443",
        "other.example.net",
    ]


def test_pip_config_files_and_sections(home: Path) -> None:
    write(home / ".config" / "pip" / "pip.conf", "[global]\nindex-url = https://global.example.com/simple\n")
    write(
        home / ".pip" / "pip.conf",  # legacy file: lower precedence than the XDG one
        "[global]\nindex_url = https://legacy.example.com/simple\nextra-index-url = https://extra.example.com/\n",
    )
    write(home.parent / "xdg" / "pip" / "pip.conf", "[install]\nindex-url = https://install.example.com/\n")
    hosts = expand_preset("@pip", env(home))
    # install: [install] wins over [global]; download: [global] (the XDG user file beats the legacy one).
    assert hosts == ["install.example.com", "extra.example.com", "global.example.com"]


def test_pip_xdg_config_home(home: Path) -> None:
    config = home.parent / "cfg"
    write(config / "pip" / "pip.conf", "[global]\nindex-url = https://xdg.example.com/\n")
    assert expand_preset("@pip", env(home, XDG_CONFIG_HOME=str(config))) == ["xdg.example.com"]


def test_pip_system_files(home: Path) -> None:
    write(presets.ETC_PIP_CONF, "[download]\nindex-url = https://etc.example.com/\n")
    hosts = expand_preset("@pip", env(home))
    assert hosts == ["etc.example.com", *pip_defaults()]  # install keeps the default index


def test_pip_config_file_variable_wins_and_skips_user_files(home: Path) -> None:
    write(home / ".config" / "pip" / "pip.conf", "[global]\nextra-index-url = https://user.example.com/\n")
    chosen = write(home.parent / "chosen.conf", "[global]\nindex-url = https://chosen.example.com/\n")
    assert expand_preset("@pip", env(home, PIP_CONFIG_FILE=str(chosen))) == ["chosen.example.com"]


def test_pip_config_file_devnull_loads_no_file(home: Path) -> None:
    write(home / ".config" / "pip" / "pip.conf", "[global]\nindex-url = https://user.example.com/\n")
    assert expand_preset("@pip", env(home, PIP_CONFIG_FILE=os.devnull)) == pip_defaults()


def test_pip_virtualenv_site_file(home: Path) -> None:
    venv = home.parent / "venv"
    write(venv / "pip.conf", "[global]\nindex-url = https://venv.example.com/\n")
    assert expand_preset("@pip", env(home, VIRTUAL_ENV=str(venv))) == ["venv.example.com"]


def test_pip_file_urls_contribute_no_host(home: Path) -> None:
    environ = env(home, PIP_INDEX_URL="file:///opt/index/simple", PIP_EXTRA_INDEX_URL="file:///opt/more")
    with pytest.raises(PresetError, match="found no host"):
        expand_preset("@pip", environ)
    environ = env(home, PIP_EXTRA_INDEX_URL="file:///opt/more https://extra.example.com/")
    assert expand_preset("@pip", environ) == ["extra.example.com", *pip_defaults()]


def test_pip_default_index_spelled_out_still_gets_its_file_host(home: Path) -> None:
    from pip._internal.models.index import PyPI

    assert expand_preset("@pip", env(home, PIP_INDEX_URL=PyPI.simple_url)) == pip_defaults()


def test_pip_bad_url_names_its_source(home: Path) -> None:
    conf = write(home / ".config" / "pip" / "pip.conf", "[global]\nindex-url = ftp://index.example.com/\n")
    with pytest.raises(PresetError, match=str(conf)):
        expand_preset("@pip", env(home))


def test_pip_unparsable_config(home: Path) -> None:
    write(home / ".config" / "pip" / "pip.conf", "index-url = https://no-section.example.com/\n")
    with pytest.raises(PresetError, match="cannot read pip configuration"):
        expand_preset("@pip", env(home))


def test_pip_missing_says_so(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pip._internal.models.index", None)  # import now raises ImportError
    with pytest.raises(PresetError, match="pip is not importable"):
        expand_preset("@pip", env(home))
    # An explicit index does not need pip's defaults at all.
    assert expand_preset("@pip", env(home, PIP_INDEX_URL="https://index.example.com/")) == [
        "index.example.com"
    ]


def test_pip_on_this_machine() -> None:
    hosts, expansions = expand_presets(["@pip"])
    assert hosts and expansions == {"@pip": hosts}
    for host in hosts:
        assert parse_pattern(host).kind in ("exact", "ip")


# -- @npm ----------------------------------------------------------------------------------------------


def test_npm_env_registry(home: Path) -> None:
    environ = env(home, NPM_CONFIG_REGISTRY="https://npm.example.com/")
    assert expand_preset("@npm", environ, cwd=home) == ["npm.example.com"]
    environ = env(home, npm_config_registry="http://npm.example.com:4873/")
    assert expand_preset("@npm", environ, cwd=home) == ["npm.example.com:4873"]


def test_npm_rc_files_and_scopes(home: Path) -> None:
    write(
        home / ".npmrc",
        "; comment\n# comment\nregistry = https://user.example.com/\n"
        '@corp:registry="https://corp.example.com/npm/"\n//user.example.com/:_authToken=${TOKEN}\n',
    )
    project = home / "project"
    write(project / ".npmrc", "registry=https://${REG_HOST}/\n")
    environ = env(home, REG_HOST="project.example.com")
    assert expand_preset("@npm", environ, cwd=project) == ["project.example.com", "corp.example.com"]
    assert expand_preset("@npm", environ, cwd=home) == ["user.example.com", "corp.example.com"]


def test_npm_global_files(home: Path) -> None:
    write(home.parent / "prefix" / "etc" / "npmrc", "registry=https://prefix.example.com/\n")
    write(presets.ETC_NPMRC, "registry=https://etc.example.com/\n@x:registry=https://x.example.com/\n")
    assert expand_preset("@npm", env(home), cwd=home) == ["prefix.example.com", "x.example.com"]


def test_npm_userconfig_variable(home: Path) -> None:
    rc = write(home.parent / "other-npmrc", "registry=https://other.example.com/\n")
    assert expand_preset("@npm", env(home, NPM_CONFIG_USERCONFIG=str(rc)), cwd=home) == ["other.example.com"]


def test_npm_section_keys_are_not_top_level(home: Path) -> None:
    write(home / ".npmrc", "[section]\nregistry=https://in-section.example.com/\n")
    with pytest.raises(PresetError, match="npm is not installed"):
        expand_preset("@npm", env(home), cwd=home)


def test_npm_asks_npm_only_when_nothing_is_configured(home: Path) -> None:
    bin_dir = home.parent / "bin"
    npm = write(
        bin_dir / "npm", '#!/bin/sh\n[ "$*" = "config get registry" ] && echo https://asked.example.com/\n'
    )
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    environ = env(home, PATH=str(bin_dir))
    assert expand_preset("@npm", environ, cwd=home) == ["asked.example.com"]
    write(home / ".npmrc", "@corp:registry=https://corp.example.com/\n")  # a scope alone: still asks
    assert expand_preset("@npm", environ, cwd=home) == ["corp.example.com", "asked.example.com"]


def test_npm_failing_npm(home: Path) -> None:
    bin_dir = home.parent / "bin"
    npm = write(bin_dir / "npm", "#!/bin/sh\nexit 3\n")
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(PresetError, match=r"exit 3\); set NPM_CONFIG_REGISTRY"):
        expand_preset("@npm", env(home, PATH=str(bin_dir)), cwd=home)


def test_npm_without_npm_says_how_to_configure(home: Path) -> None:
    with pytest.raises(PresetError, match="npm is not installed; set NPM_CONFIG_REGISTRY"):
        expand_preset("@npm", env(home), cwd=home)
