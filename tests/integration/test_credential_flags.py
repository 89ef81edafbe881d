"""A request that carries a well-known credential nobody declared (a posted `.env`) is flagged in its record and
by `netjail audit --check`; the same request without one, and a token in its own Authorization header, are not."""

from __future__ import annotations

import json

import pytest

from tests.support.netjail import Netjail
from tests.support.servers import Origin

pytestmark = pytest.mark.nonroot

ENV_FILE = "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_REGION=eu-west-1\n"
HARMLESS = "AWS_REGION=eu-west-1\nLOG_LEVEL=debug\n"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4" * 4 + "E5f6"


def _post(netjail: Netjail, origin: Origin, body: str, *curl: str):
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    (netjail.work / ".env").write_text(body)  # on the host: the command line (in run_start) stays clean
    command = (
        f"curl -sS --max-time 20 -o /dev/null {' '.join(curl)} "
        f"--data-binary @.env http://allowed.test:{origin.port}/upload"
    )
    result = netjail.run("-s", str(cfg), "-c", command)
    assert result.returncode == 0, result.explain()
    (flow,) = result.flows
    return result, [f for f in flow["flags"] if f["kind"] == "credential"]


def test_a_posted_env_file_with_an_aws_key_is_flagged(netjail: Netjail, http_origin: Origin) -> None:
    result, flags = _post(netjail, http_origin, ENV_FILE)
    assert [f["detail"].split(" (")[0] for f in flags] == ["an AWS access key"]
    assert "AKIAIOSFODNN7EXAMPLE" not in (result.run_dir / "flows.jsonl").read_text()  # a digest names it
    audit = netjail.command("audit", "--check", "--json")
    assert audit.returncode == 3
    assert json.loads(audit.stdout)["flag_kinds"].get("credential") == 1


def test_the_same_post_without_a_key_is_not_flagged(netjail: Netjail, http_origin: Origin) -> None:
    _, flags = _post(netjail, http_origin, HARMLESS)
    assert flags == []


def test_a_token_in_its_own_authorization_header_is_not_a_finding(
    netjail: Netjail, http_origin: Origin
) -> None:
    _, flags = _post(netjail, http_origin, HARMLESS, "-H", f"'Authorization: Bearer {GITHUB_TOKEN}'")
    assert flags == []
    _, flags = _post(netjail, http_origin, HARMLESS, "-H", f"'X-Debug: {GITHUB_TOKEN}'")
    assert [f["detail"].split(" (")[0] for f in flags] == ["a GitHub token"]


def test_a_flagged_flow_can_be_looked_at_redacted(netjail: Netjail, http_origin: Origin) -> None:
    """`netjail flows --show ID`: the request and response, the start of each body, credentials replaced."""
    result, flags = _post(netjail, http_origin, ENV_FILE, "-H", "'Authorization: Bearer hunter2-secret'")
    assert flags
    flow_id = result.flows[0]["id"]
    shown = netjail.command("flows", "--show", flow_id[:8])
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert f"flow {flow_id}" in text and "flag credential: an AWS access key" in text
    assert f"> POST http://allowed.test:{http_origin.port}/upload" in text
    assert ">   AWS_REGION=eu-west-1" in text  # the body's start, as sent
    assert (
        ">   AWS_ACCESS_KEY_ID=[redacted AWS access key sha256:" in text
        and "AKIAIOSFODNN7EXAMPLE" not in text
    )
    assert "< HTTP/1.1 200" in text
    assert "hunter2-secret" not in text and "[redacted sha256:" in text
    as_json = json.loads(netjail.command("flows", "--show", flow_id, "--json").stdout)
    assert as_json["request"]["method"] == "POST" and as_json["response"]["status"] == 200
    missing = netjail.command("flows", "--show", "nope")
    assert missing.returncode == 1 and "no flow 'nope'" in missing.stderr
