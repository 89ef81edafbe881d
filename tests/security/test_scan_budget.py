"""The protected-name scan's budget (issue 10's precision): a tree past it refuses the run with exit 125 and the
fix, rather than starting with part of the tree protected. Through the real netjail binary, beside a control."""

from __future__ import annotations

import pytest

from tests.support.netjail import Netjail

pytestmark = pytest.mark.nonroot


def test_a_scan_past_its_budget_refuses_the_run_and_one_within_it_runs(netjail: Netjail) -> None:
    for i in range(40):
        (netjail.work / f"f{i}").touch()
    cfg = netjail.settings(filesystem={"allowWrite": ["."]})
    over = netjail.run("-s", str(cfg), "-c", "echo ran", env={**netjail.env, "NETJAIL_SCAN_LIMIT": "20"})
    assert over.returncode == 125 and "ran" not in over.stdout, over.explain()
    for part in (str(netjail.work), "20 entries", "allowWrite", "NETJAIL_SCAN_LIMIT", "Fix:"):
        assert part in over.stderr, over.explain()
    within = netjail.run("-s", str(cfg), "-c", "echo ran", env={**netjail.env, "NETJAIL_SCAN_LIMIT": "1000"})
    assert within.returncode == 0 and within.stdout.strip() == "ran", within.explain()
