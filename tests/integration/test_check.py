"""`netjail check`, the real command, on every example of docs/policy.md: the decision and the rule that made it,
read from the settings file alone; `netjail explain` lists the same rules."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.support.netjail import REPO, Netjail

pytestmark = pytest.mark.nonroot


def documented_examples() -> dict[str, dict]:
    """Each example of docs/policy.md ("### title" and its json block) as the network block it shows."""
    doc = (REPO / "docs" / "policy.md").read_text().split("## Examples", 1)[1]
    examples = {}
    for title, block in re.findall(r"### (.+?)\n.*?```json[^\n]*\n(.*?)```", doc, re.S):
        examples[title] = {"deniedDomains": [], **json.loads("{" + block + "}")}
    return examples


EXAMPLES = documented_examples()

CASES = [
    (
        "GitHub, read-only",
        "GET",
        "https://github.com/org/repo.git/info/refs?service=git-upload-pack",
        "allow",
        "github.com: allow GET,HEAD /**",
    ),
    (
        "GitHub, read-only",
        "POST",
        "https://github.com/org/repo.git/git-upload-pack",
        "allow",
        "github.com: allow POST /*/*/git-upload-pack",
    ),
    (
        "GitHub, read-only",
        "GET",
        "https://github.com/org/repo.git/info/refs?service=git-receive-pack",
        "deny",
        "github.com: deny * /**/info/refs?*service=git-receive-pack*",
    ),
    (
        "GitHub, read-only",
        "POST",
        "https://github.com/org/repo.git/git-receive-pack",
        "deny",
        "github.com: deny * /**/git-receive-pack",
    ),
    ("GitHub, read-only", "POST", "https://api.github.com/graphql", "deny", "api.github.com: default deny"),
    (
        "GitHub, read-only",
        "GET",
        "https://api.github.com/repos/org/repo",
        "allow",
        "api.github.com: allow GET,HEAD /**",
    ),
    (
        "GitHub, read-only",
        "GET",
        "https://codeload.github.com/org/repo/tar.gz/main",
        "allow",
        "codeload.github.com, objects.githubusercontent.com: allow GET,HEAD /**",
    ),
    (
        "GitHub, read-only",
        "POST",
        "https://uploads.github.com/repos/org/repo/releases/1/assets",
        "deny",
        "default-deny",
    ),
    (
        "PyPI, read-only",
        "GET",
        "https://index.test/simple/requests/",
        "allow",
        "index.test: allow GET,HEAD /**",
    ),
    (
        "PyPI, read-only",
        "POST",
        "https://index.test/legacy/",
        "deny",
        "index.test: default deny",
    ),
    ("PyPI, read-only", "POST", "https://upload.index.test/legacy/", "deny", "default-deny"),
    (
        "npm, read-only",
        "GET",
        "https://registry.npmjs.org/@types%2fnode",
        "allow",
        "registry.npmjs.org: allow GET,HEAD /**",
    ),
    (
        "npm, read-only",
        "PUT",
        "https://registry.npmjs.org/@scope%2fname",
        "deny",
        "registry.npmjs.org: default deny",
    ),
    (
        "npm, read-only",
        "POST",
        "https://registry.npmjs.org/-/npm/v1/security/advisories/bulk",
        "allow",
        "registry.npmjs.org: allow POST /-/npm/v1/security/**",
    ),
    (
        "An API host where only one call is allowed",
        "POST",
        "https://api.anthropic.com/v1/messages",
        "allow",
        "api.anthropic.com: allow POST /v1/messages?",
    ),
    (
        "An API host where only one call is allowed",
        "POST",
        "https://api.anthropic.com/v1/files",
        "deny",
        "api.anthropic.com: default deny",
    ),
    (
        "An API host where only one call is allowed",
        "GET",
        "https://api.anthropic.com/v1/messages",
        "deny",
        "api.anthropic.com: default deny",
    ),
    (
        "An API host where only one call is allowed",
        "POST",
        "https://api.anthropic.com/v1/messages?beta=true",
        "deny",
        "api.anthropic.com: default deny",
    ),
]


def test_every_documented_example_is_checked() -> None:
    assert {title for title, *_ in CASES} == set(EXAMPLES)


@pytest.mark.parametrize(("title", "method", "url", "verdict", "rule"), CASES)
def test_check_answers_for_every_documented_example(
    netjail: Netjail, title: str, method: str, url: str, verdict: str, rule: str
) -> None:
    cfg = netjail.settings({**EXAMPLES[title], "hosts": {}})
    # @pip expands to the index of the pip configuration netjail sees: this test's own
    env = {**netjail.env, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "https://index.test/simple"}
    done = netjail.command("check", url, "--method", method, "-s", str(cfg), "--json", env=env)
    assert done.returncode == (0 if verdict == "allow" else 1), done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert (report["verdict"], report["rule"]) == (verdict, rule), report
    assert report["method"] == method and report["url"] == url


def test_check_in_words_names_the_rule_and_what_to_add(netjail: Netjail) -> None:
    cfg = netjail.settings({**EXAMPLES["GitHub, read-only"], "hosts": {}})
    done = netjail.command(
        "check", "https://github.com/org/repo.git/git-receive-pack", "-m", "post", "-s", str(cfg)
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("deny  POST https://github.com/org/repo.git/git-receive-pack\n")
    assert "  rule:   github.com: deny * /**/git-receive-pack\n" in done.stdout
    assert '{"allow": "POST", "path": "/org/repo.git/git-receive-pack"}' in done.stdout


def test_check_refuses_a_bad_url_and_bad_settings(netjail: Netjail) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"]})
    bad_url = netjail.command("check", "ftp://allowed.test/", "-s", str(cfg))
    assert bad_url.returncode == 2 and "is not an http(s) URL" in bad_url.stderr
    bad = netjail.tmp_path / "bad.json"
    bad.write_text(
        '{"network": {"allowedDomains": [], "deniedDomains": [], "rules": [{"hosts": ["x.test"]}]}}'
    )
    refused = netjail.command("check", "https://x.test/", "-s", str(bad))
    assert refused.returncode == 125 and "network.rules[0]" in refused.stderr
    # the control: a pinned allowed host, judged by its pinned address too, creates no run
    ok = netjail.command("check", "http://allowed.test:8080/x", "-s", str(cfg), "--json")
    assert ok.returncode == 0, ok.stderr
    assert [s["step"] for s in json.loads(ok.stdout)["steps"]] == ["host", "address"]
    assert not netjail.state.exists()


def test_explain_lists_the_rules(netjail: Netjail) -> None:
    cfg = netjail.settings({**EXAMPLES["GitHub, read-only"], "hosts": {}})
    text = netjail.command("explain", "-s", str(cfg)).stdout
    assert (
        "    [0] github.com (default deny):\n      0. deny * /**/info/refs?*service=git-receive-pack*  (pushing is not allowed from this jail)\n"
        in text
    )
    assert "      3. allow POST /*/*/git-upload-pack\n      otherwise: deny\n" in text
    report = json.loads(netjail.command("explain", "-s", str(cfg), "--json").stdout)
    assert report["network"]["rules"][1]["hosts"] == ["api.github.com"]


def test_the_check_module_loads_only_click_and_the_standard_library() -> None:
    code = (
        "import sys, netjail, click; before = set(sys.modules); import netjail.cli.check; "
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('netjail', 'pydantic', 'pydantic_core', 'structlog', 'mitmproxy', 'cryptography', 'rich') "
        "and not m.startswith(('netjail.cli', 'netjail.utils'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_explain_shows_the_upload_caps(netjail: Netjail) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test"], "limits": {"maxHostUploadBytes": 1000}})
    text = netjail.command("explain", "-s", str(cfg)).stdout
    assert (
        "  upload caps (network.limits; 413, or the stream is cut): maxHostUploadBytes 1000 bytes\n" in text
    )
