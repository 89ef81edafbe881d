"""Shared fixtures: real origin servers on 127.0.0.1 (HTTP and HTTPS with a trustme CA), a DNS server, a
WebSocket echo and a runner for the real netjail command. The helpers themselves live in tests/support/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.dns import DnsServer
from tests.support.netjail import TEST_NAMES, Netjail
from tests.support.servers import Origin, RawEcho, WebSocketEcho, start_origin, tls_server_context


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@pytest.fixture(scope="session")
def http_origin() -> Origin:
    origin = start_origin("http-origin", None)
    yield origin
    origin.server.shutdown()


@pytest.fixture(scope="session")
def https_origin(test_ca: tuple[trustme.CA, Path]) -> Origin:
    ca, _ = test_ca
    origin = start_origin("https-origin", tls_server_context(ca, *TEST_NAMES, "127.0.0.1"))
    yield origin
    origin.server.shutdown()


@pytest.fixture
def netjail(tmp_path: Path, test_ca: tuple[trustme.CA, Path]) -> Netjail:
    return Netjail(tmp_path, test_ca[1])


@pytest.fixture
def dns_server() -> DnsServer:
    server = DnsServer()
    yield server
    server.close()


@pytest.fixture
def ws_origin() -> WebSocketEcho:
    server = WebSocketEcho()
    yield server
    server.close()


@pytest.fixture
def raw_echo() -> Iterator[RawEcho]:
    server = RawEcho()
    yield server
    server.close()
