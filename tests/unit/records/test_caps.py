"""Record caps (netjail/records/caps.py, docs/records.md "Caps"): at the cap a value is kept whole, one past it
is cut and noted with its full length and digest."""

from __future__ import annotations

import hashlib
import json

from mitmproxy.test import tflow

from netjail.records.caps import (
    FIELD_CAP,
    HEADER_VALUE_CAP,
    RECORD_CAP,
    URL_CAP,
    cap_record,
    cap_stored_flow,
    mark_incomplete,
)


def test_url_at_the_cap_is_kept_and_one_past_is_cut_with_length_and_digest() -> None:
    at = "http://a.test/" + "a" * (URL_CAP - len("http://a.test/"))
    assert cap_record({"url": at}) == {"url": at}
    past = at + "b"
    capped = cap_record({"url": past, "path": "/"})
    assert capped["url"] == past[:URL_CAP]
    assert capped["truncated"] == {
        "url": {"length": URL_CAP + 1, "sha256": hashlib.sha256(past.encode()).hexdigest()}
    }


def test_other_strings_are_cut_at_the_field_cap() -> None:
    assert cap_record({"user_agent": "u" * FIELD_CAP}) == {"user_agent": "u" * FIELD_CAP}
    capped = cap_record({"user_agent": "u" * (FIELD_CAP + 1), "status": 200})
    assert (
        capped["user_agent"] == "u" * FIELD_CAP
        and capped["truncated"]["user_agent"]["length"] == FIELD_CAP + 1
    )
    assert capped["status"] == 200


def test_a_record_still_too_large_keeps_its_core_fields() -> None:
    record = {"event": "flow", "id": "x", "url": "u", "flags": [{"kind": "k" * 100}] * 1000}
    capped = cap_record(record)
    assert "flags" not in capped and capped["id"] == "x"
    assert capped["truncated"]["record"]["length"] > RECORD_CAP
    assert len(json.dumps(capped)) <= RECORD_CAP


def test_incomplete_marks_allowed_flows_and_keeps_denials() -> None:
    assert mark_incomplete({"verdict": "allow", "reason": "allowed", "error": None})["reason"] == "incomplete"
    denied = mark_incomplete({"verdict": "deny", "reason": "denied_by_rule", "error": None})
    assert denied["reason"] == "denied_by_rule" and denied["error_kind"] == "incomplete"


def test_stored_flow_headers_and_path_are_capped() -> None:
    flow = tflow.tflow(resp=True)
    flow.request.path = "/" + "p" * URL_CAP
    flow.request.headers["x-at"] = "v" * HEADER_VALUE_CAP
    flow.request.headers["x-past"] = "v" * (HEADER_VALUE_CAP + 1)
    cap_stored_flow(flow)
    assert len(flow.request.data.path) == URL_CAP
    assert flow.request.headers["x-at"] == "v" * HEADER_VALUE_CAP
    assert flow.request.headers["x-past"] == "v" * HEADER_VALUE_CAP
    note = flow.metadata["netjail.truncated"]
    assert note["path"]["length"] == URL_CAP + 1 and note["request_headers"]["values_cut"] == 1
    assert "response_headers" not in note


def test_stored_flow_within_the_caps_is_untouched() -> None:
    flow = tflow.tflow(resp=True)
    fields = flow.request.headers.fields
    cap_stored_flow(flow)
    assert flow.request.headers.fields is fields and "netjail.truncated" not in flow.metadata
