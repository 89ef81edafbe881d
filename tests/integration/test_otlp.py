"""OpenTelemetry export: a run's records reach an OTLP/HTTP receiver on loopback, field by field as in
flows.jsonl; a receiver that is down costs the run nothing but a warning; a bad export setting stops the run
before it starts."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netjail import Netjail
from tests.support.otlp import OtlpReceiver, any_value
from tests.support.servers import Origin
from tests.support.wait import wait_until

pytestmark = pytest.mark.nonroot

CURL = "curl -sS --max-time 20 -o /dev/null"
TOKEN = "otlp-token-0c1d2e3f4a5b"
DOCS = Path(__file__).parents[2] / "docs"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.close()


def _export_env(netjail: Netjail, endpoint: str, **extra: str) -> dict[str, str]:
    return {
        **netjail.env,
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {TOKEN}",
        **extra,
    }


def test_every_record_reaches_the_receiver_as_written(
    netjail: Netjail, receiver: OtlpReceiver, http_origin: Origin
) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        f"{CURL} http://allowed.test:{http_origin.port}/a; {CURL} http://denied.test:{http_origin.port}/b; "
        "env | grep -c OTEL_ || true",
        env=_export_env(netjail, receiver.endpoint),
    )  # fmt: skip
    assert result.returncode == 0, result.explain()
    assert result.stdout.strip() == "0"  # the export settings (and the token in them) stay outside the jail

    received = receiver.log_records()
    assert [any_value(r.body) for _, r in received] == result.records
    run_id = result.records[0]["run_id"]
    resource, first = received[0]
    assert resource["service.name"] == "netjail" and resource["netjail.records.schema"] == "1"
    assert first.event_name == "netjail.run_start"
    attributes = [{kv.key: any_value(kv.value) for kv in r.attributes} for _, r in received]
    assert {a["netjail.run_id"] for a in attributes} == {run_id}
    denied = next(
        a for a, rec in zip(attributes, result.records, strict=True) if rec.get("verdict") == "deny"
    )
    assert denied["server.address"] == "denied.test" and denied["netjail.event"] in ("flow", "flow_start")
    assert {h.get("authorization") for h in receiver.headers} == {f"Bearer {TOKEN}"}
    assert TOKEN not in result.stderr and TOKEN not in (result.run_dir / "flows.jsonl").read_text()


def test_a_receiver_that_is_down_costs_a_warning_and_nothing_else(
    netjail: Netjail, http_origin: Origin
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}/v1/logs"
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    env = _export_env(netjail, endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="1")
    result = netjail.run(
        "-s", str(cfg), "-c", f"{CURL} http://allowed.test:{http_origin.port}/; exit 3", env=env
    )
    assert result.returncode == 3, result.explain()
    assert f"records were not delivered to {endpoint}" in result.stderr
    assert [r["event"] for r in result.records][-1] == "run_end"
    assert TOKEN not in result.stderr


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL='http/json'"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "opentelemetry-exporter-otlp-proto-grpc"),
    ],
)
def test_an_export_that_cannot_be_set_up_stops_the_run_before_it_starts(
    netjail: Netjail, tmp_path: Path, extra: dict[str, str], says: str
) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    marker = tmp_path / "ran"
    result = netjail.run(
        "-c", f"touch {marker}", env=_export_env(netjail, "http://127.0.0.1:9/v1/logs", **extra)
    )
    if extra["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc" and result.returncode == 0:
        pytest.skip("the gRPC exporter is installed here")
    assert result.returncode == 125 and says in result.stderr, result.explain()
    assert not marker.exists()
    assert result.run_dir is None  # no run directory was made


def test_disabled_sdk_exports_nothing(netjail: Netjail, receiver: OtlpReceiver) -> None:
    env = _export_env(netjail, receiver.endpoint, OTEL_SDK_DISABLED="true")
    result = netjail.run("-c", "true", env=env)
    assert result.returncode == 0, result.explain()
    assert receiver.requests == []


def test_a_burst_of_records_larger_than_the_exporters_queue_is_delivered_whole(
    netjail: Netjail, receiver: OtlpReceiver, http_origin: Origin
) -> None:
    """1,200 denied requests on one kept-alive connection: more than the SDK's queue holds at once (it drops what
    overflows), so the follower waits for each batch to be sent."""
    code = (
        "import http.client, os, urllib.parse\n"
        "p = urllib.parse.urlsplit(os.environ['HTTP_PROXY'])\n"
        "c = http.client.HTTPConnection(p.hostname, p.port)\n"
        "for i in range(1200):\n"
        f"    c.request('GET', 'http://denied.test:{http_origin.port}/%d' % i)\n"
        "    c.getresponse().read()\n"
    )
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s", str(cfg), "--", sys.executable, "-c", code, env=_export_env(netjail, receiver.endpoint)
    )
    assert result.returncode == 0, result.explain()
    assert len(result.records) > 1200
    assert [any_value(r.body) for _, r in receiver.log_records()] == result.records


@pytest.mark.skipif(
    not (OTELCOL := shutil.which("otelcol") or shutil.which("otelcol-contrib")), reason="no otelcol on PATH"
)
def test_the_documented_collector_configuration_receives_the_records(
    netjail: Netjail, tmp_path: Path, http_origin: Origin
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = (DOCS / "otel-collector.yaml").read_text().replace("127.0.0.1:4318", f"127.0.0.1:{port}")
    (tmp_path / "otelcol.yaml").write_text(config)
    collector = subprocess.Popen([str(OTELCOL), "--config", str(tmp_path / "otelcol.yaml")], cwd=tmp_path)
    try:
        assert wait_until(lambda: _listening(port), timeout=20), "otelcol never listened"
        cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
        env = {**_export_env(netjail, f"http://127.0.0.1:{port}/v1/logs")}
        result = netjail.run("-s", str(cfg), "-c", f"{CURL} http://allowed.test:{http_origin.port}/", env=env)
        assert result.returncode == 0 and "not delivered" not in result.stderr, result.explain()
        out = tmp_path / "netjail-records.json"
        assert wait_until(lambda: out.exists() and "netjail.run_end" in out.read_text(), timeout=20)
    finally:
        collector.terminate()
        collector.wait(timeout=20)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
