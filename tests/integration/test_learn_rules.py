"""`netjail learn --rules`: a real learning run against a loopback origin proposes method and path rules, and a
run under the learned settings allows what was used while another method or path on the same host is denied."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.netjail import Netjail, netjail_executable
from tests.support.servers import Origin

pytestmark = pytest.mark.nonroot

CURL = "curl -sS --max-time 20"


def test_learn_rules_then_the_learned_file_narrows_the_host(netjail: Netjail, http_origin: Origin) -> None:
    p = http_origin.port
    base = netjail.settings({"allowedDomains": []})
    learned_path = netjail.tmp_path / "learned.json"
    command = f"{CURL} -f -o /dev/null http://other.test:{p}/pkg/a && {CURL} -f -o /dev/null http://other.test:{p}/pkg/b"
    proc = subprocess.run(
        [netjail_executable(), "learn", "--rules", "-s", str(base), "-o", str(learned_path), "-c", command],
        cwd=netjail.work, env=netjail.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    learned = json.loads(learned_path.read_text())
    assert learned["network"]["allowedDomains"] == ["other.test"]
    assert learned["network"]["rules"] == [
        {"hosts": ["other.test"], "requests": [{"allow": ["GET"], "path": "/pkg/**"}], "default": "deny"}
    ]
    used = netjail.run(
        "-s", str(learned_path), "-c", f"{CURL} -o /dev/null -w '%{{http_code}}' http://other.test:{p}/pkg/c"
    )
    assert used.stdout == "200", used.explain()
    other_path = netjail.run(
        "-s", str(learned_path), "-c", f"{CURL} -o /dev/null -w '%{{http_code}}' http://other.test:{p}/admin"
    )
    assert other_path.stdout == "403", other_path.explain()
    other_method = netjail.run(
        "-s",
        str(learned_path),
        "-c",
        f"{CURL} -o /dev/null -w '%{{http_code}}' -X POST -d x http://other.test:{p}/pkg/c",
    )
    assert other_method.stdout == "403", other_method.explain()
