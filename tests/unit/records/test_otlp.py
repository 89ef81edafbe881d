"""Which environments ask for OTLP export, and what netjail says about the endpoint."""

from __future__ import annotations

import pytest

from netjail.records.otlp import ExportConfig, ExportConfigError, _attributes, _severity


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"OTEL_LOGS_EXPORTER": "console"}, None),
        ({"OTEL_LOGS_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, None),
        ({"OTEL_LOGS_EXPORTER": "otlp"}, ExportConfig("http/protobuf", "http://localhost:4318/v1/logs")),
        (
            {"OTEL_LOGS_EXPORTER": "console, otlp"},
            ExportConfig("http/protobuf", "http://localhost:4318/v1/logs"),
        ),
        (
            {
                "OTEL_LOGS_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "https://u:secret@c.example:4318?t=1",
            },
            ExportConfig("http/protobuf", "https://c.example:4318"),
        ),
        (
            {
                "OTEL_LOGS_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://b:4318/v1/logs",
            },
            ExportConfig("http/protobuf", "http://b:4318/v1/logs"),
        ),
    ],
)
def test_the_standard_variables_decide(environ: dict[str, str], expected: ExportConfig | None) -> None:
    assert ExportConfig.from_environ(environ) == expected


def test_an_unknown_protocol_is_refused_with_the_fix() -> None:
    with pytest.raises(ExportConfigError, match="set it to http/protobuf"):
        ExportConfig.from_environ({"OTEL_LOGS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_attributes_and_severity_follow_the_record() -> None:
    denied = {
        "event": "flow",
        "verdict": "deny",
        "host": "x.test",
        "port": 443,
        "method": "GET",
        "status": 403,
    }
    assert _attributes(denied, "R") == {
        "netjail.run_id": "R",
        "netjail.event": "flow",
        "netjail.verdict": "deny",
        "server.address": "x.test",
        "server.port": 443,
        "http.request.method": "GET",
        "http.response.status_code": 403,
    }
    assert _severity(denied).name == "WARN"
    assert _severity({"event": "flow", "verdict": "allow"}).name == "INFO"
    assert _severity({"event": "run_end", "exit_status": 1}).name == "WARN"
