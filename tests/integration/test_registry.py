"""Opt-in (NETJAIL_TEST_REGISTRY=1): a real package fetched from the registry pip is configured for on this
machine, through netjail, with the `@pip` preset. No file names the registry's hosts: the preset derives them."""

from __future__ import annotations

import os
import sys

import pytest

from tests.support.netjail import Netjail

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(
        not os.environ.get("NETJAIL_TEST_REGISTRY"), reason="opt-in: set NETJAIL_TEST_REGISTRY=1"
    ),
]


def test_pip_download_through_the_pip_preset(netjail: Netjail) -> None:
    cfg = netjail.settings({"allowedDomains": ["@pip"], "hosts": {}, "tlsTerminate": {}})
    # pip's own defaults (no config file): the index the preset expands to when nothing overrides it
    command = f"PIP_CONFIG_FILE=/dev/null {sys.executable} -m pip download --no-deps --no-cache-dir --only-binary=:all: -q -d dl six"
    result = netjail.run("-s", str(cfg), "-c", command, timeout=180)
    assert result.returncode == 0, result.explain()
    wheels = list((netjail.work / "dl").glob("six-*.whl"))
    assert len(wheels) == 1
    flows = result.flows
    assert flows and all(f["verdict"] == "allow" for f in flows)
    assert any(f["path"].endswith(".whl") and f["bytes_in"] == wheels[0].stat().st_size for f in flows)
    assert len({f["host"] for f in flows}) == 2  # the index and the file host


def test_pip_fails_cleanly_when_the_file_host_is_not_allowed(netjail: Netjail) -> None:
    from pip._internal.models.index import PyPI

    index_host = PyPI.netloc  # the index alone, without the host that serves the package files
    cfg = netjail.settings({"allowedDomains": [index_host], "hosts": {}, "tlsTerminate": {}})
    command = f"PIP_CONFIG_FILE=/dev/null {sys.executable} -m pip download --no-deps --no-cache-dir --only-binary=:all: --retries 0 -q -d dl six"
    result = netjail.run("-s", str(cfg), "-c", command, timeout=180)
    assert result.returncode != 0
    denied = [f for f in result.flows if f["verdict"] == "deny"]
    assert denied and {f["reason"] for f in denied} == {"not_allowed"}
    assert "allowedDomains" in result.stderr
