"""`Sandbox`: run commands under one set of netjail settings from Python, and read what each one sent.

    from netjail import Sandbox

    with Sandbox({"network": {"allowedDomains": ["@pip"]}, "filesystem": {"allowWrite": ["."]}}) as sandbox:
        done = sandbox.run("pip download --no-deps six", cwd=project)
        for flow in done.flows:
            print(flow["verdict"], flow["host"], flow.get("path"))

Each `run` is one netjail run — its own jail, proxy, CA and run directory — executed by the real `netjail`
command, so a program driven through the API gets exactly the judgement and records of `netjail -c`. Runs may
overlap (from threads): their flows never mix, because each has its own records. The settings are validated when
the Sandbox is made, with the same messages as the command line.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from netjail.records.read import iter_records
from netjail.records.rundir import runs_dir
from netjail.records.runs import first_record, run_dirs, run_id_time
from netjail.records.schema import FlowRecord, Record, RunEnd, RunStart

if TYPE_CHECKING:
    from netjail.settings import LoadedSettings, Settings


class SandboxError(Exception):
    """netjail itself failed (exit 125: the jail or the proxy could not be set up, the log could not be written);
    the message is netjail's."""

    def __init__(self, message: str, completed: Completed):
        super().__init__(message)
        self.completed = completed


@dataclass
class Completed:
    """One finished run: the command's exit status and output, and its records."""

    args: str | list[str]
    returncode: int
    stdout: str | bytes
    stderr: str | bytes
    run_dir: Path | None
    _records: list[Record] | None = field(default=None, repr=False)

    @property
    def records(self) -> list[Record]:
        """Every record of the run, in order (docs/records.md)."""
        if self._records is None:
            self._records = list(iter_records(self.run_dir / "flows.jsonl")) if self.run_dir else []
        return self._records

    @property
    def flows(self) -> list[FlowRecord]:
        """The finished flows (`event: flow`), allowed and denied."""
        return [cast(FlowRecord, r) for r in self.records if r.get("event") == "flow"]

    @property
    def denied(self) -> list[FlowRecord]:
        return [f for f in self.flows if f.get("verdict") == "deny"]

    @property
    def run_start(self) -> RunStart | None:
        return next((cast(RunStart, r) for r in self.records if r.get("event") == "run_start"), None)

    @property
    def run_end(self) -> RunEnd | None:
        return next((cast(RunEnd, r) for r in reversed(self.records) if r.get("event") == "run_end"), None)

    def check_returncode(self) -> None:
        """Raise subprocess.CalledProcessError if the command failed, as subprocess.CompletedProcess does."""
        if self.returncode:
            raise subprocess.CalledProcessError(self.returncode, self.args, self.stdout, self.stderr)


class Sandbox:
    """One set of settings (a file, a dict in the settings file's shape, or a `netjail.settings.Settings`;
    None: the file `netjail` itself would find) under which commands run, each as its own netjail run."""

    def __init__(
        self,
        settings: str | os.PathLike[str] | Mapping[str, Any] | Settings | None = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        debug: bool = False,
    ):
        from netjail.settings import SettingsError, find_settings_path, load_settings

        self._private = tempfile.TemporaryDirectory(prefix="netjail-api-")
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.debug = debug
        path = self._settings_file(settings)
        try:
            file, origin = find_settings_path(path)
            self.loaded: LoadedSettings = load_settings(file, origin=origin)
        except SettingsError:
            self.close()
            raise
        self.settings_path = self.loaded.path
        self.warnings = self.loaded.warnings
        self._lock = threading.Lock()
        self.runs: list[Completed] = []

    def _settings_file(self, settings: object) -> Path | None:
        if settings is None:
            return None
        if isinstance(settings, str | os.PathLike):
            return Path(settings)
        if isinstance(settings, Mapping):
            text = json.dumps(settings, indent=2)
        else:
            from netjail.settings import Settings

            if not isinstance(settings, Settings):
                raise TypeError(
                    f"settings: a path, a mapping or netjail.settings.Settings, not {type(settings)}"
                )
            text = settings.model_dump_json(by_alias=True, exclude_unset=True, indent=2)
        path = Path(self._private.name) / "settings.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def run(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        input: str | bytes | None = None,
        timeout: float | None = None,
        capture_output: bool = True,
        text: bool = True,
        check: bool = False,
    ) -> Completed:
        """Run `command` (a shell string, as `-c`, or an argv) in a fresh jail under this sandbox's settings.
        `env` is added to netjail's environment: what reaches the command is what the settings pass through.
        Raises SandboxError when netjail itself failed (exit 125 with nothing run), TimeoutExpired on `timeout`
        (the run is ended as on SIGTERM), CalledProcessError with `check` when the command failed."""
        started = time.time()
        argv = [sys.executable, "-m", "netjail", "-s", str(self.settings_path)]
        if self.debug:
            argv.append("-d")
        args: str | list[str] = command if isinstance(command, str) else list(command)
        argv += ["-c", command] if isinstance(command, str) else ["--", *command]
        environ = {**os.environ, **(env or {})}
        if self.state_dir is not None:
            environ["NETJAIL_STATE_DIR"] = str(self.state_dir)
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=environ,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_output else None,
            stderr=subprocess.PIPE if capture_output else None,
            text=text,
        )
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.terminate()  # netjail forwards it and ends the run cleanly, with its records
            process.communicate()
            raise
        run_dir = _run_dir_of(process.pid, runs_dir(environ), started)
        done = Completed(args, process.returncode, stdout or "", stderr or "", run_dir)
        with self._lock:
            self.runs.append(done)
        if process.returncode == 125 and (done.run_end is None or done.run_end.get("reason") != "exited"):
            message = (
                stderr if isinstance(stderr, str) else (stderr or b"").decode(errors="replace")
            ).strip()
            raise SandboxError(message or "netjail failed (exit 125)", done)
        if check:
            done.check_returncode()
        return done

    def close(self) -> None:
        self._private.cleanup()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sandbox({shlex.quote(str(self.settings_path))}, runs={len(self.runs)})"


def _run_dir_of(pid: int, root: Path, started: float) -> Path | None:
    """The run directory netjail process `pid` made: the newest runs whose run_start names that pid (runs started
    before this one are not looked at, so a reused pid cannot match)."""
    for path in reversed(run_dirs(root)):
        when = run_id_time(path.name)
        if when is not None and when.timestamp() < started - 1:
            break
        record = first_record(path / "flows.jsonl")
        if record is not None and record.get("event") == "run_start" and record.get("pid") == pid:
            return path
    return None
