"""The flows of a run's flows.mitm as readers show them: every credential replaced again (headers named in the
run's `record.redactHeaders`, the run's configured secrets) in case the file came from elsewhere. Used by
`netjail export --har` and `netjail flows --show`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from netjail.detect.secrets import Secrets
from netjail.records.redaction import DEFAULT_REDACT, redact_value
from netjail.records.rundir import RunDir

if TYPE_CHECKING:
    from mitmproxy.flow import Flow


def redact_headers(run: RunDir) -> frozenset[str]:
    try:
        data = json.loads(run.settings_json.read_text(encoding="utf-8"))
        names = (data.get("record") or {}).get("redactHeaders")
        if isinstance(names, list):
            return frozenset(str(n).lower() for n in names)
    except (OSError, ValueError, AttributeError):
        pass
    return frozenset(DEFAULT_REDACT)


def stored_flows(run: RunDir, secrets: Secrets | None) -> Iterator[tuple[Flow, list[str]]]:
    """Each flow of flows.mitm, redacted, with where something had to be replaced now."""
    from mitmproxy import http, io

    from netjail.detect.mitm import redact_flow

    redact = redact_headers(run)
    try:
        f = run.flows_mitm.open("rb")
    except OSError:
        return
    with f:
        for flow in io.FlowReader(f).stream():
            where: list[str] = []
            if isinstance(flow, http.HTTPFlow):
                for message, part in ((flow.request, "request"), (flow.response, "response")):
                    if message is None:
                        continue
                    for name in list(message.headers.keys()):
                        value = message.headers[name]
                        if name.lower() in redact and not value.startswith("[redacted"):
                            message.headers[name] = redact_value(value)
                            where.append(f"{part} header {name.lower()}")
                where += redact_flow(flow, secrets)
            yield flow, where
