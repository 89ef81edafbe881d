"""A loopback OTLP/HTTP logs receiver: decodes each export request with opentelemetry-proto, as a collector does."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as the Python value it encodes (an empty AnyValue is None)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    return getattr(value, kind)


class OtlpReceiver:
    def __init__(self) -> None:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

        self.requests: list[ExportLogsServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = ExportLogsServiceRequest()
                request.ParseFromString(body)
                receiver.requests.append(request)
                receiver.headers.append(dict(self.headers.items()))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/v1/logs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def log_records(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, LogRecord) for every record received, in order."""
        out = []
        for request in self.requests:
            for resource_logs in request.resource_logs:
                resource = {kv.key: any_value(kv.value) for kv in resource_logs.resource.attributes}
                for scope_logs in resource_logs.scope_logs:
                    out.extend((resource, record) for record in scope_logs.log_records)
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
