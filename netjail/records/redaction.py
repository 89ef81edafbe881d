"""What a record holds in place of a credential header's value: a digest, never the value (flows.jsonl,
flows.mitm and the HAR export alike)."""

from __future__ import annotations

import hashlib

# Header names whose values are replaced unless settings `record.redactHeaders` says otherwise.
DEFAULT_REDACT = ("authorization", "cookie", "proxy-authorization")


def redact_value(value: str) -> str:
    return f"[redacted sha256:{hashlib.sha256(value.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}]"
