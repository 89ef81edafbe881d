"""Live policy updates of a running sandbox.

Two sources: SIGUSR1 re-reads the settings file the run started with; `--control-fd N` reads srt's control
protocol, each line one whole settings object. The supervisor validates the new settings as at start; what may
change is the network policy (`network`): the proxy swaps its rules, requests on connections already open are
judged by the new rules at their next request, and the streams open now that the new rules refuse (raw TCP,
WebSockets) are closed. A change anywhere else (filesystem, credentials, the environment…) is refused: the
jail's mounts and the command's environment are fixed when it starts. An invalid update keeps the old rules.
Each update is a `policy_update` record: its source, the result, and the SHA-256 of the new effective settings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import selectors
from pathlib import Path
from typing import Any

import structlog

from netjail.policy.proxy_settings import ProxySettings
from netjail.records.log import RecordLog, utc_timestamp
from netjail.records.rundir import RunDir
from netjail.records.schema import PolicyUpdate, UpdateResult, UpdateSource
from netjail.settings import LoadedSettings, SettingsError, load_settings

log = structlog.get_logger("netjail")

MAX_LINE = 1 << 20  # one settings object on the control descriptor


class PolicyUpdates:
    def __init__(
        self,
        loaded: LoadedSettings,
        runs: RunDir,
        records: RecordLog,
        send_to_proxy: Any,
        control_fd: int | None,
    ):
        self.current = loaded
        self.runs, self.records = runs, records
        self.send_to_proxy = send_to_proxy  # bytes -> None: a line on the proxy's control socket
        self.control_fd = control_fd
        self.count = 0
        self.pending: list[tuple[dict[str, Any], LoadedSettings]] = []  # sent, awaiting the proxy's answer
        self._buffer = b""

    def register(self, selector: selectors.BaseSelector) -> None:
        if self.control_fd is not None:
            os.set_blocking(self.control_fd, False)
            selector.register(self.control_fd, selectors.EVENT_READ, "control")

    def from_signal(self) -> None:
        """SIGUSR1: the settings file again, as it is now."""
        self._apply(self.current.path, "sigusr1")

    def reread(self, source: UpdateSource) -> None:
        """The settings file again, changed by netjail itself (ask mode's "always": netjail/run/ask.py)."""
        self._apply(self.current.path, source)

    def from_control(self, selector: selectors.BaseSelector) -> None:
        assert self.control_fd is not None
        try:
            data = os.read(self.control_fd, 1 << 16)
        except BlockingIOError:
            return
        if not data:  # the harness closed its end: no more updates
            selector.unregister(self.control_fd)
            return
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line.strip():
                self._from_line(line)
        if len(self._buffer) > MAX_LINE:
            self._buffer = b""
            self._record("control-fd", "invalid", message=f"a line longer than {MAX_LINE} bytes was dropped")

    def _from_line(self, line: bytes) -> None:
        self.count += 1
        path = self.runs.path / f"update-{self.count}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(line)
        self._apply(path, "control-fd")

    def _apply(self, path: Path, source: UpdateSource) -> None:
        try:
            loaded = load_settings(path, origin=self.current.origin)
        except SettingsError as e:
            first = str(e).splitlines()[0]
            self._record(source, "invalid", message=f"the old rules stay: {first}")
            return
        changed = _other_changes(self.current, loaded)
        if changed:
            self._record(
                source,
                "refused",
                message=f"only network may change while the sandbox runs; refused: {', '.join(changed)}",
            )
            return
        self.count += 1
        effective = self.runs.path / f"settings-{self.count}.json"
        effective.write_text(loaded.effective_json())
        update: dict[str, Any] = {
            "source": source,
            "digest": hashlib.sha256(effective.read_bytes()).hexdigest(),
        }
        self.pending.append((update, loaded))
        # the proxy gets the validated value, not the file: it never imports the settings loader
        value = base64.b64encode(ProxySettings.of(loaded.settings).dumps()).decode()
        message = {"reload": str(effective), "digest": update["digest"], "value": value}
        self.send_to_proxy(json.dumps(message).encode() + b"\n")

    def on_proxy_line(self, line: str) -> bool:
        """An answer of the proxy (`reloaded DIGEST CLOSED`, `reload_failed WHY`); False for other lines."""
        if not line.startswith(("reloaded ", "reload_failed ")) or not self.pending:
            return False
        update, loaded = self.pending.pop(0)
        if line.startswith("reloaded "):
            _, _digest, closed = (line.split() + ["0"])[:3]
            self.current = loaded
            self._record(update["source"], "applied", digest=update["digest"], closed_streams=int(closed))
        else:
            self._record(
                update["source"], "failed", message=f"the proxy kept the old rules ({line.split()[-1]})"
            )
        return True

    def _record(
        self,
        source: UpdateSource,
        result: UpdateResult,
        *,
        digest: str | None = None,
        message: str | None = None,
        closed_streams: int | None = None,
    ) -> None:
        record: PolicyUpdate = {
            "event": "policy_update",
            "ts": utc_timestamp(),
            "source": source,
            "result": result,
            "digest": digest,
            "message": message,
        }
        if closed_streams is not None:
            record["closed_streams"] = closed_streams
        log.debug("policy.update", source=source, result=result, digest=digest)
        self.records.write(record)


def _other_changes(old: LoadedSettings, new: LoadedSettings) -> list[str]:
    """What differs that cannot change under a running jail: the top-level settings other than `network`, and
    `network.limits`."""
    before = old.settings.model_dump(by_alias=True, exclude={"network"})
    after = new.settings.model_dump(by_alias=True, exclude={"network"})
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    # the parser limits and upload caps are set in the proxy's layers when it starts: not live
    if old.settings.network.limits != new.settings.network.limits:
        changed.append("network.limits")
    return changed
