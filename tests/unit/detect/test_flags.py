"""netjail.detect.flags: what the detectors flag in bodies, URLs, hosts and headers, and over a whole run (subdomain
bursts). Every negative row has a harmless control beside it."""

from __future__ import annotations

import base64
import json
import random
import time

import pytest

from netjail.detect import flags as audit
from netjail.detect.flags import BodyScanner, BurstCounter
from netjail.detect.secrets import Secrets

SECRET = b"tok_9fQ2xLm4Zr8Wv1Kp"


# ---------------------------------------------------------------------------------------------------------
# Bodies, URLs, hosts
# ---------------------------------------------------------------------------------------------------------


def _scan(*chunks: bytes) -> list[str]:
    scanner = BodyScanner(None)
    for chunk in chunks:
        scanner.feed(chunk)
    return [f["kind"] for f in scanner.flags()]


def test_body_detectors() -> None:
    rng = random.Random(7)
    blob = base64.b64encode(rng.randbytes(3000))
    assert _scan(b"data=" + blob[:1000], blob[1000:] + b"&x=1") == ["encoded_body"]
    assert _scan(b"d=" + rng.randbytes(64).hex().encode() * 2) == ["encoded_body"]  # 256 hex digits
    assert _scan(rng.randbytes(50_000)) == ["high_entropy_body"]
    # controls: ordinary uploads
    assert _scan(json.dumps({"name": "netjail", "tags": ["a", "b"], "n": 3}).encode()) == []
    assert _scan(b"0032want " + rng.randbytes(20).hex().encode() + b"\n" * 3) == []  # git-upload-pack
    assert (
        _scan(("integrity sha512-" + base64.b64encode(rng.randbytes(64)).decode()).encode()) == []
    )  # 88 chars
    assert _scan(b"hello world, this is an ordinary form post " * 200) == []
    assert _scan(b"\x00\x01" * 5000) == []  # binary but low entropy
    assert _scan(b"abcdefghijklmnopqrstuvwxyz" * 40) == []  # a long run, but not random


@pytest.mark.parametrize(
    ("path", "flagged"),
    [
        ("/q?d=" + base64.urlsafe_b64encode(random.Random(1).randbytes(48)).decode(), True),
        ("/q?d=" + random.Random(2).randbytes(40).hex(), True),
        ("/" + base64.urlsafe_b64encode(random.Random(3).randbytes(48)).decode().rstrip("=") + "/x", True),
        ("/hello?q=1", False),
        ("/packages/ab/cd/" + "0123456789abcdef" * 4 + "/six-1.16.0-py2.py3-none-any.whl", False),
        ("/obj?X-Amz-Signature=" + "ab12" * 16 + "&X-Amz-Credential=AKIAEXAMPLE%2F20260101", False),
        ("/search?q=how+to+write+a+long+query+with+many+plain+english+words", False),
        ("/simple/some-package-with-a-long-descriptive-name/", False),
        ("/info/refs?service=git-upload-pack", False),
    ],
)
def test_url_flags(path: str, flagged: bool) -> None:
    assert bool(audit.url_flags(path)) is flagged


def test_long_dns_label() -> None:
    assert audit.host_flags("a" * 41 + ".tunnel.test")
    assert not audit.host_flags("a" * 40 + ".tunnel.test")
    assert not audit.host_flags("2001:db8::1") and not audit.host_flags("192.0.2.1")


def test_header_flags() -> None:
    secrets = Secrets.from_values([("env:T", SECRET)])
    blob = base64.b64encode(random.Random(5).randbytes(200)).decode()
    kinds = [f["kind"] for f in audit.header_flags([("X-Data", blob), ("X-Key", SECRET.decode())], secrets)]
    assert kinds == ["encoded_header", "secret"]
    assert audit.header_flags([("Authorization", "Bearer " + blob), ("Accept", "*/*")], secrets) == []


def test_subdomain_bursts() -> None:
    rng = random.Random(3)
    counter = BurstCounter()
    for _ in range(6):
        counter.add(f"{rng.randbytes(12).hex()}.tunnel.test")
    for i in range(25):
        counter.add(f"n{i}.many.test")
    for name in ("www.normal.test", "api.normal.test", "cdn.normal.test", "normal.test"):
        counter.add(name)
    for _ in range(4):  # below the encoded threshold
        counter.add(f"{rng.randbytes(12).hex()}.few.test")
    found = {f["domain"]: f for f in counter.findings()}
    assert set(found) == {"tunnel.test", "many.test"}
    assert found["tunnel.test"]["names"] == 6 and len(found["tunnel.test"]["examples"]) == 5


def test_large_upload_threshold() -> None:
    assert audit.size_flags(audit.LARGE_UPLOAD)[0]["kind"] == "large_upload"
    assert audit.size_flags(audit.LARGE_UPLOAD - 1) == []


def test_scanner_is_linear_on_long_runs() -> None:
    """A body of one endless base64 run must not make the detector quadratic (it runs inside the proxy)."""
    blob = b"A" * (4 * 1024 * 1024)
    started = time.perf_counter()
    assert _scan(*(blob[i : i + 65536] for i in range(0, len(blob), 65536))) == []
    print(f"4 MiB single-character run scanned in {time.perf_counter() - started:.3f} s")


def test_subdomain_bursts_are_counted_per_registrable_domain() -> None:
    counter = BurstCounter()
    for i in range(25):
        counter.add(f"d{i}.mine.cloudfront.net")  # one customer's names: counted under it
        counter.add(f"customer{i}.cloudfront.net")  # 25 customers of a CDN: each its own domain, no burst
        counter.add(f"n{i}.example.co.uk")
        counter.add(f"x{i}.co.uk")  # registered names under a registry's suffix, no burst
    found = {f["domain"] for f in counter.findings()}
    assert found == {"mine.cloudfront.net", "example.co.uk"}
