"""flows.mitm entries are built from the live flow's state (addons/recorder.py); what makes that cheap: each
connection's certificates are PEM-encoded once, not once per flow. Duck-typed on mitmproxy's connections and
certificates (no mitmproxy import here): a connection has `id`, `certificate_list` and maybe `mitmcert`, a
certificate `to_pem()`, and a connection's `get_state()` calls `get_state()` on each certificate it holds."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class EncodedCertificate:
    """A certificate's serialised state (PEM), standing in for its `Cert` while a flow's state is built."""

    __slots__ = ("pem",)

    def __init__(self, pem: bytes) -> None:
        self.pem = pem

    def get_state(self) -> bytes:
        return self.pem


class EncodedCertificates:
    """The PEM of each connection's certificates, encoded once per connection instead of once per flow (every
    flow's state carries its connections' chains). Bounded: the oldest connections are forgotten first."""

    LIMIT = 256

    def __init__(self) -> None:
        self.by_connection: dict[tuple[str, str], tuple[tuple, tuple[EncodedCertificate, ...]]] = {}

    def _encoded(self, conn: Any, field: str, certs: tuple) -> tuple[EncodedCertificate, ...]:
        key = (conn.id, field)
        cached = self.by_connection.get(key)
        if cached is not None and len(cached[0]) == len(certs) and all(map(operator.is_, cached[0], certs)):
            return cached[1]
        encoded = tuple(EncodedCertificate(cert.to_pem()) for cert in certs)
        self.by_connection.pop(key, None)
        self.by_connection[key] = (certs, encoded)
        if len(self.by_connection) > self.LIMIT:
            del self.by_connection[next(iter(self.by_connection))]
        return encoded

    @contextmanager
    def standing_in(self, *connections: Any) -> Iterator[None]:
        """While the block runs (synchronously: nothing else sees it), the connections hold encoded stand-ins
        for their certificates; get_state() then copies PEM bytes instead of encoding every certificate."""
        saved: list[tuple[Any, str, Any]] = []
        try:
            for conn in connections:
                for field in ("certificate_list", "mitmcert"):
                    value = getattr(conn, field, None)
                    if not value:
                        continue
                    saved.append((conn, field, value))
                    encoded = self._encoded(
                        conn, field, tuple(value) if field == "certificate_list" else (value,)
                    )
                    setattr(conn, field, list(encoded) if field == "certificate_list" else encoded[0])
            yield
        finally:
            for conn, field, value in saved:
                setattr(conn, field, value)
