"""An AWS Signature V4 verifier for the test origins, written from AWS's specification and independent of the
signer netjail uses (botocore): standard library only. Checked against AWS's published test vectors in
tests/unit/policy/test_sigv4.py."""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Mapping

_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = []
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        pairs.append((_encode(urllib.parse.unquote(key)), _encode(urllib.parse.unquote(value))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _encode(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


def signature(
    secret: str,
    method: str,
    target: str,
    headers: Mapping[str, str],
    payload_hash: str,
    credential: str,
    signed_headers: str,
    amz_date: str,
    *,
    double_encode: bool = False,
) -> str:
    """The signature over one request (`target` = path?query as sent; `headers` by lower-case name)."""
    path, _, query = target.partition("?")
    if double_encode:  # every service but S3 encodes the already-encoded path once more
        path = _encode(path).replace("%2F", "/")
    names = signed_headers.split(";")
    canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
    canonical = "\n".join(
        [method, path or "/", _canonical_query(query), canonical_headers, signed_headers, payload_hash]
    )
    _, date, region, service, terminal = credential.split("/")
    scope = f"{date}/{region}/{service}/{terminal}"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), date), region), service), "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    secret: str, access_key: str, method: str, target: str, headers: Mapping[str, str], body: bytes
) -> bool:
    """True when the request's Authorization header is a valid SigV4 signature by (access_key, secret)."""
    match = _AUTH.fullmatch(headers.get("authorization", ""))
    if match is None:
        return False
    credential, signed_headers, given = match.groups()
    if credential.split("/")[0] != access_key:
        return False
    payload = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    if re.fullmatch(r"[0-9a-f]{64}", payload) and payload != hashlib.sha256(body).hexdigest():
        return False  # the signed hash must be the body's
    amz_date = headers.get("x-amz-date", "")
    expected = signature(secret, method, target, headers, payload, credential, signed_headers, amz_date)
    return hmac.compare_digest(expected, given)
