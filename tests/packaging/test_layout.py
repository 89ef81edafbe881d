"""The package as this repository installs it: every package listed in pyproject.toml, the top-level addons/
and configs/ folders mapped into it, one version. tests/packaging/test_wheel.py checks a built wheel."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import netjail
from netjail.utils.resources import bundled_config
from tests.packaging.stock_mitmdump import deny_one_request

REPO = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
# Each top-level folder of the repository that is installed inside the package, by its package name.
MAPPED = {"netjail.addons": "addons", "netjail.configs": "configs"}


def test_pyproject_lists_every_package() -> None:
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "netjail").rglob("__init__.py")}
    assert sorted(SETUPTOOLS["packages"]) == sorted(found | set(MAPPED))
    assert SETUPTOOLS["package-dir"] == MAPPED
    # setuptools' editable finder maps a folder to a package only when it has an __init__.py
    assert all((REPO / folder / "__init__.py").is_file() for folder in MAPPED.values())


def test_the_editable_install_maps_the_addons_and_configs(tmp_path: Path) -> None:
    """From a directory other than the repository's, isolated (as the proxy process runs): only the install
    puts netjail on sys.path, and the folders are found under their package names, not their own."""
    code = (
        "import json, importlib.util, netjail.addons.policy as policy\n"
        "from netjail.utils.resources import bundled_config\n"
        "print(json.dumps({'policy': policy.__file__, 'default': str(bundled_config('default.json')),"
        " 'top_level_addons': importlib.util.find_spec('addons') is not None}))\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found == {
        "policy": str(REPO / "addons" / "policy.py"),
        "default": str(REPO / "configs" / "default.json"),
        "top_level_addons": False,
    }


def test_bundled_config_is_a_file_of_the_repositorys_configs() -> None:
    assert bundled_config("example.json") == REPO / "configs" / "example.json"
    assert bundled_config("default.json").is_file()


@pytest.mark.parametrize("name", ["../pyproject.toml", "sub/default.json", "/etc/passwd", "", ".", ".."])
def test_bundled_config_takes_a_file_name_only(name: str) -> None:
    with pytest.raises(ValueError, match="file name"):
        bundled_config(name)


def test_one_version() -> None:
    installed = importlib.metadata.version("netjail")
    assert installed == netjail.__version__, "the metadata is stale: pip install -e '.[test]' again"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "netjail"), "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout == f"netjail, version {netjail.__version__}\n"


def test_importing_netjail_does_not_look_up_its_metadata() -> None:
    """The supervisor starts on every command's critical path; a metadata lookup costs 10-40 ms."""
    code = "import sys, netjail; print('importlib.metadata' in sys.modules)"
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "False\n", proc.stderr


def test_the_readmes_mitmdump_command_works_in_the_repository(tmp_path: Path) -> None:
    mitmdump = str(Path(sys.executable).parent / "mitmdump")
    command = [mitmdump, "-s", "addons/policy.py", "-s", "addons/recorder.py"]
    output = deny_one_request(command, REPO / "configs" / "default.json", tmp_path, cwd=REPO)
    assert "Loading script addons/policy.py" in output and "Loading script addons/recorder.py" in output
