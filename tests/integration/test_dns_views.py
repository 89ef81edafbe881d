"""DNS lookups are shown wherever a user looks at a run: `netjail flows` (table, filters, --json), the end-of-run
summary, `netjail audit` (per-host table, denied count) and `netjail runs` (counts)."""

from __future__ import annotations

import json

import pytest

from tests.support.netjail import Netjail
from tests.support.servers import Origin

pytestmark = pytest.mark.nonroot


@pytest.fixture
def run_with_lookups(netjail: Netjail, http_origin: Origin):
    """A program that ignores the proxy variables and resolves names itself: one allowed, one denied (twice)."""
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    result = netjail.run(
        "-s", str(cfg), "-c",
        "getent hosts denied.test; getent hosts denied.test; "
        f"curl -sS --noproxy '*' -o /dev/null http://allowed.test:{http_origin.port}/via-dns; true",
    )  # fmt: skip
    assert result.returncode == 0, result.explain()
    assert result.records[0]["capture_mode"] == "transparent"
    return result


def _refused(result) -> int:
    """getent asks for A and AAAA: two lookups a call."""
    return sum(1 for r in result.records if r["event"] == "dns" and r["verdict"] == "deny")


def test_the_end_of_run_summary_names_refused_lookups(run_with_lookups) -> None:
    stderr, n = run_with_lookups.stderr, _refused(run_with_lookups)
    assert n >= 2
    assert f"netjail: refused {n} DNS lookups of 1 name(s): denied.test ({n})" in stderr, stderr
    assert '"allowedDomains": ["denied.test"]' in stderr


def test_flows_lists_lookups_and_filters_them(netjail: Netjail, run_with_lookups) -> None:
    table = netjail.command("flows").stdout
    dns_rows = [line for line in table.splitlines() if " DNS " in f" {line} "]
    assert any("denied.test" in row and "deny" in row for row in dns_rows), table
    denied = [json.loads(line) for line in netjail.command("flows", "--denied", "--json").stdout.splitlines()]
    assert {(r["event"], r["name"]) for r in denied} == {("dns", "denied.test")}
    by_method = netjail.command("flows", "--method", "DNS", "--host", "allowed.test", "--json").stdout
    assert [json.loads(line)["verdict"] for line in by_method.splitlines()] and all(
        json.loads(line)["event"] == "dns" for line in by_method.splitlines()
    )


def test_audit_and_runs_count_lookups(netjail: Netjail, run_with_lookups) -> None:
    n = _refused(run_with_lookups)
    report = json.loads(netjail.command("audit", "--json").stdout)
    assert report["totals"]["dns_denied"] == n
    denied_host = next(h for h in report["hosts"] if h["host"] == "denied.test")
    assert denied_host["dns"] == n and denied_host["dns_denied"] == n and denied_host["requests"] == 0
    text = netjail.command("audit").stdout
    assert f"{n} denied attempts (all {n} DNS lookups)" in text, text
    end = run_with_lookups.records[-1]
    assert end["counts"]["dns_denied"] == n and end["counts"]["dns"] > n


def test_runs_shows_refused_lookups(netjail: Netjail, run_with_lookups) -> None:
    listing = netjail.command("runs").stdout
    header, row = listing.splitlines()[0], listing.splitlines()[1]
    assert "dns denied" in header
    assert row.split()[-2] == str(_refused(run_with_lookups)), listing
