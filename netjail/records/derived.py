"""What readers derive from a record, defined once: whether a flow failed, and how its destination is shown."""

from __future__ import annotations

from netjail.records.schema import FlowReason, FlowRecord, RunCounts

# The recorder's reasons for an allowed flow that did not get through.
FAILED_REASONS: frozenset[FlowReason] = frozenset({"upstream_error", "client_tls_failed"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def failed_upstream(record: FlowRecord) -> bool:
    """Allowed, but the connection did not work (DNS, TLS, refused, timeout, the client rejected the CA)."""
    return record.get("reason") in FAILED_REASONS


def http_error(record: FlowRecord) -> bool:
    """Allowed, and the server (not netjail) answered 4xx or 5xx."""
    status = record.get("status")
    return record.get("verdict") == "allow" and isinstance(status, int) and status >= 400


def is_failed(record: FlowRecord) -> bool:
    """An upstream failure, or an HTTP error the server (not netjail) answered."""
    return record.get("reason") in FAILED_REASONS or http_error(record)  # failed_upstream, inlined: per row


def count_flow(counts: RunCounts, record: FlowRecord) -> None:
    """A flow into run_end's `counts`: a verdict each, and failed upstream besides."""
    counts["flows"] += 1
    if record.get("verdict") == "allow":
        counts["allowed"] += 1
    else:
        counts["denied"] += 1
    if failed_upstream(record):
        counts["failed"] += 1


def bracketed(host: str) -> str:
    """An IPv6 address in brackets, as in a URL or an allowedDomains entry; anything else as it is."""
    return f"[{host}]" if ":" in host else host


def host_port(host: str, port: int | None, scheme: str | None) -> str:
    """`host`, or `host:port` when the port is not the scheme's default (the form in a flow's `url`)."""
    shown = f"[{host}]" if ":" in host else host  # bracketed(), inlined: called for every row shown
    return shown if port is None or port == DEFAULT_PORTS.get(str(scheme)) else f"{shown}:{port}"


def shown_destination(record: FlowRecord) -> str:
    return host_port(str(record.get("host") or "?"), record.get("port"), record.get("scheme"))
