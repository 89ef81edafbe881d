"""`netjail why` hints that are right the first time: a preset when its hosts were blocked, never a name the
audit flags as exfiltration, and for an allowed name that did not resolve, the machine's network first."""

from __future__ import annotations

import json

import pytest

from tests.support.dns import DnsServer
from tests.support.netjail import Netjail
from tests.support.servers import Origin

pytestmark = pytest.mark.nonroot

CURL = "curl -sS --max-time 10 -o /dev/null"


def _why(netjail: Netjail, env: dict[str, str] | None = None) -> dict:
    done = netjail.command("why", "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_blocked_package_index_names_the_preset(netjail: Netjail, http_origin: Origin) -> None:
    env = {
        **netjail.env,
        "PIP_INDEX_URL": f"http://index.test:{http_origin.port}/simple/",
        "PIP_CONFIG_FILE": "/dev/null",
    }
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "hosts": {"index.test": "127.0.0.1"}})
    result = netjail.run(
        "-s", str(cfg), "-c", f"{CURL} http://index.test:{http_origin.port}/simple/six/", env=env
    )
    assert 'add to your settings: {"network": {"allowedDomains": ["@pip"]}}' in result.stderr, (
        result.explain()
    )
    d = _why(netjail, env)
    (blocked,) = d["blocked"]
    assert blocked["host"] == "index.test" and blocked["preset"] == "@pip"
    assert blocked["fix"]["snippet"] == {"network": {"allowedDomains": ["@pip"]}}
    assert d["fix"]["adds"] == ["@pip"]
    assert "@pip" in d["fix"]["snippet"]["network"]["allowedDomains"]


def test_a_name_the_audit_flags_is_never_proposed(netjail: Netjail, http_origin: Origin) -> None:
    encoded = "a1b2c3d4e5f6g7h8i9j0" * 3  # a 60-character label, as DNS tunnels fill them
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    netjail.run(
        "-s", str(cfg), "-c",
        f"{CURL} http://{encoded}.exfil.test:{http_origin.port}/; {CURL} http://other.test:{http_origin.port}/",
    )  # fmt: skip
    d = _why(netjail)
    assert d["fix"]["adds"] == ["other.test"]  # the control is proposed
    (left,) = d["not_proposed"]
    assert left["host"] == f"{encoded}.exfil.test" and "label" in left["why"]
    text = netjail.command("why").stdout
    assert "not proposed:" in text and "Left out on purpose" in text


def test_an_allowed_name_that_did_not_resolve_points_at_the_machine_first(
    netjail: Netjail, dns_server: DnsServer
) -> None:
    cfg = netjail.settings(
        {"allowedDomains": ["allowed.test"], "resolver": f"127.0.0.1:{dns_server.port}", "hosts": {}}
    )
    dns_server.close()  # an offline machine: nothing answers
    result = netjail.run("-s", str(cfg), "-c", f"{CURL} http://allowed.test:1/")
    assert result.run_dir is not None, result.explain()
    d = _why(netjail)
    (failure,) = d["failures"]
    assert failure["kind"] == "dns"
    assert failure["fix"]["change"].startswith(
        "netjail allowed allowed.test, and this machine could not resolve it"
    )
