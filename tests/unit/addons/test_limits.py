"""The parser limits of addons/limits.py as pure functions: each limit at its value passes, one past it refuses,
however the head is split across reads."""

from __future__ import annotations

import pytest
from mitmproxy.test import taddons, tflow

from netjail.addons.limits import HeadScan, NetjailLimits, check_request, placeholder_request
from netjail.settings.limits import NetworkLimits

LIMITS = NetworkLimits(
    max_request_line_bytes=100,
    max_url_bytes=60,
    max_header_count=4,
    max_header_bytes=30,
    max_header_block_bytes=80,
)


def head(target: str = "/", headers: list[str] | None = None, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(headers if headers is not None else ["Host: a.test"])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def scan(data: bytes, step: int | None = None) -> str | None:
    scanner = HeadScan(LIMITS)
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        if exceeded := scanner.feed(piece):
            return exceeded.limit
    assert scanner.complete
    return None


@pytest.mark.parametrize("step", [None, 1, 3, 7])
@pytest.mark.parametrize(
    ("data", "limit"),
    [
        (head(), None),
        (head("/" + "a" * 59), None),  # a URL at the limit (measured exactly once parsed, by check_request)
        (head(headers=["H: v"] * 4), None),
        (head(headers=["H: v"] * 5), "maxHeaderCount"),
        (head(headers=["H: " + "v" * 27]), None),  # a field of 30 bytes
        (head(headers=["H: " + "v" * 28]), "maxHeaderBytes"),
        (head(headers=["H: " + "v" * 24] * 2 + ["H: " + "v" * 17]), None),  # 29 + 29 + 22 = 80
        (head(headers=["H: " + "v" * 24] * 2 + ["H: " + "v" * 18]), "maxHeaderBlockBytes"),
        (head(headers=["H: v", " folded"]), "obs-fold"),
        (head(headers=["H: v", "\tfolded"]), "obs-fold"),
        (b"\r\n" + head(), None),  # an empty line before the request line is tolerated
        (head().replace(b"\r\n", b"\n"), None),  # bare LF line ends
    ],
)
def test_head_scan(data: bytes, limit: str | None, step: int | None) -> None:
    assert scan(data, step) == limit


@pytest.mark.parametrize("step", [None, 1, 7])
def test_request_line_at_its_limit_passes(step: int | None) -> None:
    limits = LIMITS.model_copy(update={"max_url_bytes": 1000})
    line = b"GET /" + b"a" * (100 - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == 100
    scanner = HeadScan(limits)
    data = line + b"\r\nHost: a\r\n\r\n"
    for piece in [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]:
        assert scanner.feed(piece) is None
    assert scanner.complete


def test_request_line_one_past_its_limit_is_refused_before_its_end() -> None:
    limits = LIMITS.model_copy(update={"max_url_bytes": 1000})
    scanner = HeadScan(limits)
    assert scanner.feed(b"GET /" + b"a" * 95) is None  # 100 bytes, the line not finished
    exceeded = scanner.feed(b"aa")
    assert exceeded is not None and (exceeded.limit, exceeded.status) == ("maxRequestLineBytes", 414)


def test_a_long_url_is_refused_while_it_arrives() -> None:
    scanner = HeadScan(LIMITS)
    exceeded = scanner.feed(b"GET /" + b"a" * 80)
    assert exceeded is not None and (exceeded.limit, exceeded.status) == ("maxUrlBytes", 414)


def test_the_body_after_the_head_is_not_scanned() -> None:
    scanner = HeadScan(LIMITS)
    assert scanner.feed(head() + b"\n" * 1000 + b" x" * 100) is None
    assert scanner.complete


def test_a_header_flood_stops_at_the_first_line_past_the_count() -> None:
    flood = b"GET / HTTP/1.1\r\n" + b"a: b\r\n" * 20_000
    scanner = HeadScan(NetworkLimits())
    exceeded = scanner.feed(flood)
    assert exceeded is not None and (exceeded.limit, exceeded.status) == ("maxHeaderCount", 431)
    assert scanner.headers == 257


@pytest.mark.parametrize(
    ("target", "headers", "limit"),
    [
        ("/" + "a" * 59, 1, None),
        ("/" + "a" * 60, 1, "maxUrlBytes"),
        ("/", 3, None),  # Host + 3 = 4 fields
        ("/", 4, "maxHeaderCount"),
    ],
)
def test_check_request_on_parsed_requests(target: str, headers: int, limit: str | None) -> None:
    flow = tflow.tflow()
    flow.request.path = "/"
    flow.request.path = target[: len(target) - len(flow.request.url) + 1]  # the whole URL counts
    flow.request.headers.clear()
    flow.request.headers["Host"] = "a.test"
    for i in range(headers):
        flow.request.headers.add(f"x-{i}", "v")
    exceeded = check_request(flow.request, LIMITS)
    assert (exceeded.limit if exceeded else None) == limit


def test_placeholder_request_keeps_the_request_line_and_host() -> None:
    exceeded = HeadScan(LIMITS).feed(head(headers=["Host: a.test:81", *["H: v"] * 5]))
    assert exceeded is not None
    request = placeholder_request(head(headers=["Host: a.test:81", *["H: v"] * 5]), exceeded, LIMITS)
    assert (request.method, request.path, request.host_header) == ("GET", "/", "a.test:81")
    assert len(request.headers) == 1


def test_placeholder_request_without_a_usable_line_names_no_real_host() -> None:
    exceeded = HeadScan(LIMITS).feed(b"\x01\x02" * 80)
    assert exceeded is not None
    request = placeholder_request(b"\x01\x02" * 80, exceeded, LIMITS)
    assert request.host == "unknown.invalid"


def test_addon_refuses_a_marked_request_and_leaves_others() -> None:
    addon = NetjailLimits()
    with taddons.context(addon):
        flow = tflow.tflow()
        addon.requestheaders(flow)
        assert flow.response is None
        exceeded = HeadScan(NetworkLimits()).feed(b"GET / HTTP/1.1\r\n" + b"a: b\r\n" * 300)
        assert exceeded is not None
        flow = tflow.tflow()
        flow.request = placeholder_request(b"GET / HTTP/1.1\r\nHost: a.test\r\n", exceeded, NetworkLimits())
        addon.requestheaders(flow)
        assert flow.response is not None and flow.response.status_code == 431
        assert flow.response.headers["connection"] == "close"
        assert flow.metadata["netjail"] == {
            "verdict": "deny",
            "reason": "limit_exceeded",
            "rule": "network.limits.maxHeaderCount",
            "detail": "over 256 header fields (network.limits.maxHeaderCount)",
        }
