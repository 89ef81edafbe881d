"""AWS Signature V4 re-signing for masked AWS keys (settings `credentials.awsPairs`, srt's meaning).

A client inside the jail signs with the placeholder keys; the signature is an HMAC of the secret, so no
substitution can repair it: the proxy signs the request again with the real keys, with botocore's SigV4 signer
(imported only when a run has AWS pairs). It signs the headers the client signed, under the client's scope (region,
service), with the client's payload hash — or one recomputed over the body actually sent. What cannot be re-signed
soundly is classified here, and settings `credentials.sigv4` decides it (deny by default, as in srt): signed
aws-chunked streams (each chunk's signature chains off the seed), presigned URLs (the signature is in the URL the
command was given) and SigV4A (an ECDSA key pair, no shared-key HMAC to recompute).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ALGORITHM = "AWS4-HMAC-SHA256"
ALGORITHM_A = "AWS4-ECDSA-P256-SHA256"
_AUTH = re.compile(
    r"^(?P<algorithm>AWS4-HMAC-SHA256|AWS4-ECDSA-P256-SHA256)\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-fA-F]+)\s*$"
)
UNSIGNED_PAYLOADS = frozenset({"UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})
_HEX_HASH = re.compile(r"^[0-9a-f]{64}$")

Shape = Literal["header", "streaming", "presigned", "sigv4a"]


@dataclass(frozen=True)
class Signed:
    """What a request's SigV4 signature says: who signed, under which scope, what."""

    shape: Shape
    access_key_id: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    payload: str | None  # x-amz-content-sha256 as sent (None: absent, the body's hash is signed)

    @property
    def needs_body(self) -> bool:
        """True when the signature covers the body's hash: the body must be whole before it is signed again."""
        return self.payload is None or self.payload not in UNSIGNED_PAYLOADS


def classify(
    authorization: str | None, query: Sequence[tuple[str, str]], payload: str | None
) -> Signed | None:
    """The request's SigV4 signature, or None when it has none (then nothing is re-signed)."""
    if authorization:
        match = _AUTH.match(authorization.strip())
        if match is None:
            return None
        key, _, scope = match["credential"].partition("/")
        parts = scope.split("/")
        region, service = (parts[1], parts[2]) if len(parts) == 4 else ("", "")
        shape: Shape = "header"
        if match["algorithm"] == ALGORITHM_A:
            shape = "sigv4a"
        elif payload is not None and payload.startswith("STREAMING-") and payload not in UNSIGNED_PAYLOADS:
            shape = "streaming"
        return Signed(shape, key, region, service, tuple(match["signed"].lower().split(";")), payload)
    params = {k.lower(): v for k, v in query}
    if "x-amz-credential" in params and "x-amz-signature" in params:
        key = params["x-amz-credential"].partition("/")[0]
        shape = "sigv4a" if params.get("x-amz-algorithm") == ALGORITHM_A else "presigned"
        return Signed(shape, key, "", "", (), None)
    return None


def payload_is_literal_hash(payload: str | None) -> bool:
    return payload is not None and bool(_HEX_HASH.match(payload))


def resign(
    signed: Signed,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes | None,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None,
) -> dict[str, str]:
    """The headers to set so the request carries a valid signature by the real keys: Authorization, the date
    header the client used, and the session token when there is one. `headers` are the request's as they will be
    sent (placeholders already swapped); only those the client signed are signed again."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class Resigner(SigV4Auth):
        def _normalize_url_path(self, path: str) -> str:  # S3 signs the path as sent (botocore's S3SigV4Auth)
            return path if signed.service == "s3" else super()._normalize_url_path(path)

    wanted = set(signed.signed_headers) - {"x-amz-date", "x-amz-security-token", "authorization"}
    to_sign = [(name, value) for name, value in headers if name.lower() in wanted]
    uses_date = "date" in signed.signed_headers and "x-amz-date" not in signed.signed_headers
    request = AWSRequest(method=method, url=url, headers=dict(to_sign), data=body or b"")
    if uses_date:
        request.headers["Date"] = "set by the signer"  # botocore then signs Date instead of adding X-Amz-Date
    credentials = Credentials(access_key_id, secret_access_key, session_token)
    Resigner(credentials, signed.service, signed.region).add_auth(request)
    out = {"Authorization": request.headers["Authorization"]}
    for name in ("X-Amz-Date", "Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256"):
        if name in request.headers:
            out[name] = request.headers[name]
    return out
