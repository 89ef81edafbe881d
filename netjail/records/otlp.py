"""OpenTelemetry export of a run's records: each line of flows.jsonl, once written, becomes one OTLP log record.

On when the standard `OTEL_LOGS_EXPORTER` names `otlp` (and `OTEL_SDK_DISABLED` is not true); everything else —
endpoint, headers, timeout, certificates, compression, resource attributes — comes from the standard
`OTEL_EXPORTER_OTLP_*` / `OTEL_RESOURCE_ATTRIBUTES` variables, read by the OpenTelemetry SDK itself. A thread of
the supervisor follows flows.jsonl (the proxy writes it too), so export costs the proxy nothing and covers every
kind of record. flows.jsonl stays the record of truth: a receiver that is down or slow delays nothing but the
end of the run (by at most the exporter's timeout), and the run ends with one warning saying how many records
were not delivered.

The log record's body is the record itself, field by field; its event name is `netjail.<event>`; attributes
carry the run id and what log engines filter on. The SDK is imported only when export is on.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from netjail import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter

RECORDS_SCHEMA = "1"
"""The version of the record contract (docs/records.md), sent as the resource attribute `netjail.records.schema`."""

PROTOCOLS = ("http/protobuf", "grpc")
FOLLOW_INTERVAL = 0.2  # seconds between looks at flows.jsonl while the run lasts
FLUSH_EVERY = 512  # records handed to the exporter before the follower waits for them to be sent
EXTRA = "pip install 'netjail[otlp]'"


class ExportConfigError(ValueError):
    """OTLP export was asked for and cannot be set up: the run does not start."""


@dataclass(frozen=True)
class ExportConfig:
    protocol: str
    endpoint: str  # for messages: scheme, host, port and path only

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> ExportConfig | None:
        """The export the environment asks for, None when it asks for none. Raises ExportConfigError."""
        exporters = {name.strip() for name in environ.get("OTEL_LOGS_EXPORTER", "").split(",")}
        if "otlp" not in exporters or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return None
        protocol = environ.get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL") or environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol not in PROTOCOLS:
            raise ExportConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: netjail exports OTLP logs over "
                f"{' or '.join(PROTOCOLS)}. Fix: set it to http/protobuf (the OpenTelemetry Collector's port 4318)"
            )
        _check_installed(protocol)
        default = "http://localhost:4318/v1/logs" if protocol == "http/protobuf" else "http://localhost:4317"
        endpoint = environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return cls(protocol, _shown(endpoint) if endpoint else default)


EXPORTER_MODULES = {
    "http/protobuf": ("opentelemetry.exporter.otlp.proto.http._log_exporter", ""),
    "grpc": (
        "opentelemetry.exporter.otlp.proto.grpc._log_exporter",
        " opentelemetry-exporter-otlp-proto-grpc",
    ),
}


def _check_installed(protocol: str) -> None:
    """Before the run directory exists: a missing exporter stops the run before anything is started."""
    module, extra = EXPORTER_MODULES[protocol]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise ExportConfigError(
            "OTEL_LOGS_EXPORTER=otlp asks for OTLP export of the records, and the OpenTelemetry exporter is not "
            f"installed. Fix: {EXTRA}{extra}, or unset OTEL_LOGS_EXPORTER"
        )


def _shown(url: str) -> str:
    """A URL without userinfo, query or fragment: endpoints may carry tokens."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _exporter(config: ExportConfig) -> LogRecordExporter:
    module = importlib.import_module(EXPORTER_MODULES[config.protocol][0])
    exporter: LogRecordExporter = module.OTLPLogExporter()  # configured by the OTEL_EXPORTER_OTLP_* variables
    return exporter


@dataclass
class _Delivery:
    """Counts what the exporter delivered: the SDK drops failed batches after its own retries."""

    inner: LogRecordExporter
    delivered: int = 0
    failure: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self) -> LogRecordExporter:
        from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

        delivery = self

        class Counting(LogRecordExporter):
            def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
                try:
                    result = delivery.inner.export(batch)
                except Exception as e:  # the SDK would log it; the end-of-run warning says it once
                    result, reason = LogRecordExportResult.FAILURE, type(e).__name__
                else:
                    reason = "the receiver refused or did not answer"
                with delivery.lock:
                    if result is LogRecordExportResult.SUCCESS:
                        delivery.delivered += len(batch)
                    else:
                        delivery.failure = reason
                return result

            def shutdown(self) -> None:
                delivery.inner.shutdown()

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return delivery.inner.force_flush(timeout_millis)

        return Counting()


class RecordExport:
    """Follows one run's flows.jsonl from its start and sends each record as it appears; `close()` after the
    last record is written sends the rest and says what could not be delivered."""

    def __init__(self, config: ExportConfig, flows_jsonl: Path, run_id: str):
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        # The SDK logs each failed batch; netjail says it once, at the end, without the endpoint's headers.
        logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
        self.config = config
        self.run_id = run_id
        self._path = flows_jsonl
        self._delivery = _Delivery(_exporter(config))
        self._processor: BatchLogRecordProcessor = BatchLogRecordProcessor(
            self._delivery.wrap(), max_queue_size=8 * FLUSH_EVERY, max_export_batch_size=FLUSH_EVERY
        )
        self._provider: LoggerProvider = LoggerProvider(resource=_resource())
        self._provider.add_log_record_processor(self._processor)
        self._logger = self._provider.get_logger("netjail.records", __version__)
        self._emitted = 0
        self._unflushed = 0
        self._offset = 0
        self._partial = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="netjail-otlp", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(FOLLOW_INTERVAL):
            self._read_new()

    def _read_new(self) -> None:
        try:
            with self._path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                self._emit(record)
        if self._unflushed >= FLUSH_EVERY:
            # Back-pressure: the SDK's queue drops what overflows, so wait for the batch to be sent.
            self._processor.force_flush(_timeout_millis())
            self._unflushed = 0

    def _emit(self, record: dict[str, Any]) -> None:
        event = str(record.get("event", ""))
        self._logger.emit(
            timestamp=_nanoseconds(record.get("ts")),
            event_name=f"netjail.{event}",
            severity_number=_severity(record),
            severity_text=_severity(record).name,
            body=record,
            attributes=_attributes(record, self.run_id),
        )
        self._emitted += 1
        self._unflushed += 1

    def close(self) -> str | None:
        """Send what is left (bounded by the exporter's timeout); a warning for the user if anything was not
        delivered."""
        self._stop.set()
        self._thread.join()
        self._read_new()
        self._processor.force_flush(_timeout_millis())
        self._provider.shutdown()
        missing = self._emitted - self._delivery.delivered
        if missing <= 0:
            return None
        return (
            f"OTLP export: {missing} of {self._emitted} records were not delivered to {self.config.endpoint} "
            f"({self._delivery.failure}); every record is in {self._path}"
        )


def _resource() -> Any:
    from opentelemetry.sdk.resources import Resource

    attributes = {"netjail.version": __version__, "netjail.records.schema": RECORDS_SCHEMA}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = "netjail"
    attributes.setdefault("host.name", socket.gethostname())
    return Resource.create(attributes)


def _timeout_millis() -> int:
    raw = os.environ.get("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT") or os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        return int(float(raw) * 1000) if raw else 10_000
    except ValueError:
        return 10_000


def _nanoseconds(ts: object) -> int | None:
    if not isinstance(ts, str):
        return None
    try:
        return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1_000_000_000)
    except ValueError:
        return None


def _severity(record: Mapping[str, Any]) -> Any:
    from opentelemetry._logs import SeverityNumber

    event = record.get("event")
    if event == "run_end":
        return SeverityNumber.INFO if record.get("exit_status") == 0 else SeverityNumber.WARN
    if event == "quarantine" or record.get("verdict") == "deny" or record.get("flags"):
        return SeverityNumber.WARN
    return SeverityNumber.INFO


def _attributes(record: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """What a log engine indexes; semantic-convention names where one exists."""
    attributes: dict[str, Any] = {"netjail.run_id": run_id, "netjail.event": str(record.get("event", ""))}
    named = {
        "verdict": "netjail.verdict",
        "reason": "netjail.reason",
        "host": "server.address",
        "port": "server.port",
        "method": "http.request.method",
        "status": "http.response.status_code",
        "path": "netjail.path",
    }
    for key, name in named.items():
        value = record.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            attributes[name] = value
    return attributes
