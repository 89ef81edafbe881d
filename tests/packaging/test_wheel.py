"""The built wheel, installed into a fresh venv and used from outside the repository: its file list, netjail
running a command under its bundled settings, and its addons loaded by path into stock mitmdump.

The fresh venv gets only the wheel; the dependencies come from the venv running the tests, through a `.pth`
line (a plain path, so the `.pth` files there, such as the editable install's finder, are not run): no network
and no package index needed."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import netjail
from tests.packaging.stock_mitmdump import deny_one_request

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

# What the build reads. Building a copy of only these keeps the repository's own build/ (where stale files
# would end up in the wheel) and egg-info out of it.
BUILD_INPUTS = ("pyproject.toml", "README.md", "netjail", "addons", "configs")


def run(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def check(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (
        f"{proc.args}\nexit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


@dataclass
class Installed:
    wheel: Path
    python: Path
    netjail: Path
    package: Path  # the installed netjail/ directory
    outside: Path  # a directory outside the repository to run from

    def python_json(self, code: str) -> object:
        return json.loads(check(run(self.python, "-I", "-c", code, cwd=self.outside)).stdout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    if importlib.util.find_spec("setuptools") is None:
        pytest.fail(
            "the wheel is built with this venv's setuptools, which is missing: pip install -e '.[test]'"
        )
    base = tmp_path_factory.mktemp("wheel")
    source, dist, venv, outside = base / "source", base / "dist", base / "venv", base / "outside"
    source.mkdir()
    outside.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "-q")
    check(run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, source))
    (wheel,) = dist.glob("netjail-*.whl")
    check(run(sys.executable, "-m", "venv", "--without-pip", venv))
    python = venv / "bin" / "python"
    check(run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel))
    purelib = check(
        run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    ).stdout.strip()
    (Path(purelib) / "test-venv-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Installed(wheel, python, venv / "bin" / "netjail", Path(purelib) / "netjail", outside)


def test_the_wheel_holds_the_package_and_its_data_only(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    expected = {
        f"netjail/{p.relative_to(REPO / 'netjail').as_posix()}" for p in (REPO / "netjail").rglob("*.py")
    }
    expected |= {f"netjail/addons/{p.name}" for p in (REPO / "addons").glob("*.py")}
    expected |= {f"netjail/configs/{p.name}" for p in (REPO / "configs").glob("*.py")}
    assert {n for n in names if n.endswith(".py")} == expected
    configs = {f"netjail/configs/{p.name}" for p in (REPO / "configs").glob("*.json")}
    assert configs and {n for n in names if n.endswith(".json")} == configs
    assert "netjail/py.typed" in names
    dist_info = f"netjail-{netjail.__version__}.dist-info/"
    assert {n.split("/")[0] + "/" for n in names} == {"netjail/", dist_info}, "only netjail/ at the top level"


def test_the_installed_package_is_the_wheels(installed: Installed) -> None:
    """Not the repository's, nor the test venv's editable install: the venv imports its own copy."""
    found = installed.python_json(
        "import json, importlib.metadata, netjail, netjail.addons.policy as policy\n"
        "from netjail.utils.resources import bundled_config\n"
        "print(json.dumps([netjail.__file__, policy.__file__, str(bundled_config('default.json')),"
        " importlib.metadata.version('netjail'), netjail.__version__]))"
    )
    package = installed.package.resolve()
    assert found == [
        str(package / "__init__.py"),
        str(package / "addons" / "policy.py"),
        str(package / "configs" / "default.json"),
        netjail.__version__,
        netjail.__version__,
    ]
    assert (package / "configs" / "default.json").read_bytes() == (
        REPO / "configs" / "default.json"
    ).read_bytes()


def test_the_installed_netjail_reports_its_version(installed: Installed) -> None:
    proc = check(run(installed.netjail, "--version", cwd=installed.outside))
    assert proc.stdout == f"netjail, version {netjail.__version__}\n"


def _netjail_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NETJAIL_SETTINGS"}
    return env | {"NETJAIL_STATE_DIR": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def test_the_installed_netjail_runs_a_command(installed: Installed, tmp_path: Path) -> None:
    settings = installed.package / "configs" / "default.json"
    proc = check(
        run(
            installed.netjail,
            "-d",
            "-s",
            settings,
            "-c",
            "true",
            cwd=installed.outside,
            env=_netjail_env(tmp_path),
        )
    )
    assert f"file={settings}" in proc.stderr
    runs = [p for p in (tmp_path / "state" / "runs").iterdir() if p.name != "latest"]
    assert len(runs) == 1 and (runs[0] / "flows.jsonl").is_file(), runs


def test_the_installed_netjail_uses_its_bundled_default(installed: Installed, tmp_path: Path) -> None:
    proc = run(installed.netjail, "-d", "-c", "true", cwd=installed.outside, env=_netjail_env(tmp_path))
    check(proc)
    settings = (installed.package / "configs" / "default.json").resolve()
    assert f"file={settings} origin=bundled" in proc.stderr


def test_the_installed_addons_load_in_stock_mitmdump(installed: Installed, tmp_path: Path) -> None:
    # -u: mitmdump's log reaches the pipe line by line, as from its console script
    mitmdump = (installed.python, "-I", "-u", "-c", "from mitmproxy.tools.main import mitmdump; mitmdump()")
    addons = installed.package / "addons"
    command = [*map(str, mitmdump), "-s", str(addons / "policy.py"), "-s", str(addons / "recorder.py")]
    output = deny_one_request(
        command, installed.package / "configs" / "default.json", tmp_path, installed.outside
    )
    assert f"Loading script {addons / 'policy.py'}" in output
