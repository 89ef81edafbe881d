"""What a record holds in place of a credential header's value: a digest, never the value (flows.jsonl,
flows.mitm and the HAR export alike)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netjail.detect.secrets import MIN_SECRET, Secret, Secrets, encoded_forms, short_digest

if TYPE_CHECKING:
    from netjail.policy.credentials import Credential

# flow.metadata key under which addons/credentials.py leaves what it injected where
CREDENTIALS_KEY = "netjail.credentials"

# Header names whose values are replaced unless settings `record.redactHeaders` says otherwise.
DEFAULT_REDACT = ("authorization", "cookie", "proxy-authorization")


def redact_value(value: str) -> str:
    return f"[redacted sha256:{hashlib.sha256(value.encode('utf-8', 'surrogateescape')).hexdigest()[:16]}]"


# -- masked credentials (settings credentials, mode "mask") ---------------------------------------------------


@dataclass(frozen=True)
class _MaskedSecret(Secret):
    """A masked credential's real value, replaced in records by the run's placeholder (what the command sent)."""

    replacement: bytes = b""

    @property
    def placeholder(self) -> bytes:
        return self.replacement


def with_credentials(secrets: Secrets, credentials: Iterable[Credential]) -> Secrets:
    """`secrets` plus each masked credential's real value (in every encoding detect/ knows), so whatever scrubs a
    record or a stored flow with them (`redact_flow`, `redact_record`, the body scanner's flags) writes the
    placeholder where a real value would have been. The real value of a credential is flagged wherever it shows."""
    masked = [
        _MaskedSecret(
            f"credential:{c.name}",
            short_digest(real),
            tuple(encoded_forms(real)),
            replacement=c.placeholder.encode(),
        )
        for c in credentials
        if len(real := c.real.encode("utf-8", "surrogateescape")) >= MIN_SECRET
    ]
    return Secrets((*secrets.secrets, *masked)) if masked else secrets


def note_credentials(record: dict[str, Any], metadata: Mapping[str, Any]) -> None:
    """Copy the credential addon's notes (names, where, how many times; never a value) into a flow record."""
    if notes := metadata.get(CREDENTIALS_KEY):
        record["credentials"] = notes
