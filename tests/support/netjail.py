"""The real netjail command, run from the tests: its own state and working directories, settings in srt's shape
with the test names pinned to loopback, and the run's records read back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# Every network target in the suite is loopback: these names are pinned to 127.0.0.1 with `network.hosts`, the way
# an operator would pin them, and the HTTPS origin's certificate names them.
TEST_NAMES = (
    "allowed.test",
    "denied.test",
    "other.test",
    "example.test",
    "a.example.test",
    "b.a.example.test",
)

# Tests run this interpreter inside the jail. When the checkout (and so .venv) lives under /tmp, which the jail
# replaces with a private one, the settings the tests write make it visible (it must be bound, and only allowWrite
# binds a path); the product's private /tmp is unchanged.
INTERPRETER_UNDER_TMP = [sys.prefix] if Path(sys.prefix).resolve().is_relative_to("/tmp") else []


def netjail_executable() -> str:
    """The netjail console script of the interpreter running the tests."""
    candidate = Path(sys.executable).parent / "netjail"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("netjail")
    assert found, "netjail is not installed in this environment (pip install -e .)"
    return found


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    run_dir: Path | None

    @property
    def records(self) -> list[dict]:
        assert self.run_dir is not None, f"no run directory; stderr:\n{self.stderr}"
        path = self.run_dir / "flows.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    @property
    def flows(self) -> list[dict]:
        return [r for r in self.records if r["event"] == "flow"]

    def explain(self) -> str:
        return f"exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


class Netjail:
    """Runs the real netjail command with its own state directory and working directory."""

    def __init__(self, tmp_path: Path, test_ca_path: Path):
        self.state = tmp_path / "state"
        self.work = tmp_path / "work"
        self.work.mkdir()
        self.tmp_path = tmp_path
        self.test_ca_path = test_ca_path
        # the jail has a private /tmp: a copy in the working directory is what a client inside can read
        self.jail_test_ca = self.work / "test-ca.pem"
        shutil.copy(test_ca_path, self.jail_test_ca)
        self.env = {**os.environ, "NETJAIL_STATE_DIR": str(self.state)}

    def settings(self, network: dict | None = None, filesystem: dict | None = None, **top: Any) -> Path:
        """A settings file in srt's shape with the test names pinned to loopback and the test CA trusted."""
        network = dict(network or {})
        network.setdefault("allowedDomains", [])
        network.setdefault("deniedDomains", [])
        network.setdefault("hosts", {name: "127.0.0.1" for name in TEST_NAMES})
        network.setdefault("tlsTerminate", {"extraCaCertPaths": [str(self.test_ca_path)]})
        fs = {"denyRead": [], "allowWrite": ["."], "denyWrite": [], **(filesystem or {})}
        fs["allowWrite"] = [*fs["allowWrite"], *INTERPRETER_UNDER_TMP]
        path = self.tmp_path / f"settings-{len(list(self.tmp_path.glob('settings-*.json')))}.json"
        path.write_text(json.dumps({"network": network, "filesystem": fs, **top}, indent=2))
        return path

    def latest_run(self) -> Path | None:
        latest = self.state / "runs" / "latest"
        return latest.resolve() if latest.exists() else None

    def command(
        self,
        *args: str,
        timeout: float = 60,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        prefix: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        """`netjail ARGS…` (after `prefix`, e.g. `unshare -m`), output captured, no standard input."""
        return subprocess.run(
            [*prefix, netjail_executable(), *args],
            cwd=cwd or self.work,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def run(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Result:
        before = self.latest_run()
        proc = self.command(*args, timeout=timeout, env=env, cwd=cwd)
        after = self.latest_run()
        return Result(proc.returncode, proc.stdout, proc.stderr, after if after != before else None)

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(
            [netjail_executable(), *args],
            cwd=self.work,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )
