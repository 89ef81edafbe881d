"""The credential shapes: the same patterns as detect-secrets' plugins, found across chunks, named by a digest."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import runpy
from pathlib import Path

import pytest

from netjail.detect.token_rules import DETECT_SECRETS_VERSION, RULES
from netjail.detect.tokens import TOKEN_SCAN_BYTES, TokenScanner, find_tokens, header_token_flags

REPO = Path(__file__).resolve().parents[3]

# Shapes, not credentials: the documented example key of AWS, and made-up strings of each format.
SAMPLES = {
    "AWS access key": b"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
    "GitHub token": b"token: ghp_" + b"A1b2C3d4" * 4 + b"E5f6",
    "GitLab token": b"glpat-" + b"x1Y2z3W4v5" * 2,
    "npm token": b"//registry.example/:_authToken=npm_" + b"a" * 36,
    "PyPI token": b"pypi-AgEIcHlwaS5vcmc" + b"Q" * 80,
    "private key": b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
    "JSON Web Token": b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "Slack token": b"xoxb-123456-abcdef123",
    "Anthropic API key": b"ANTHROPIC_API_KEY=sk-ant-api03-" + b"Ab3_" * 24,
    "OpenAI API key": b"sk-proj-" + b"Zz9-" * 16,
    "Google API key": b"AIza" + b"B" * 35,
    "Hugging Face token": b"hf_" + b"abcdefghijklmnopqrstuvwxyzABCDEFGH",
}


@pytest.mark.parametrize("label", list(SAMPLES))
def test_each_shape_is_found_and_named_by_a_digest_only(label: str) -> None:
    found = find_tokens(b"before " + SAMPLES[label] + b" after")
    assert label in found and found[label].startswith("sha256:")
    (flag,) = [f for f in TokenScanner.flags(_scanned(SAMPLES[label])) if label in f["detail"]]
    assert SAMPLES[label].split(b"=")[-1].decode(errors="replace")[-12:] not in flag["detail"]


def _scanned(data: bytes) -> TokenScanner:
    scanner = TokenScanner()
    scanner.feed(data)
    return scanner


def test_a_token_split_between_two_chunks_is_found() -> None:
    key = SAMPLES["GitHub token"]
    scanner = TokenScanner()
    scanner.feed(b"x" * 5000 + key[:15])
    scanner.feed(key[15:] + b"\n")
    assert "GitHub token" in scanner.found


def test_ordinary_text_and_random_data_have_no_shape() -> None:
    import os

    assert find_tokens(b"def main():\n    return requests.get(url).json()\n" * 100) == {}
    assert find_tokens(os.urandom(65536).hex().encode()) == {}


def test_only_the_first_bytes_of_a_body_are_scanned() -> None:
    scanner = TokenScanner()
    scanner.feed(b"x" * TOKEN_SCAN_BYTES)
    scanner.feed(SAMPLES["AWS access key"])
    assert scanner.found == {}


def test_a_header_made_to_carry_credentials_is_not_a_finding() -> None:
    token = SAMPLES["GitHub token"].split(b" ")[1].decode()
    assert header_token_flags([("Authorization", f"Bearer {token}")]) == []
    assert [f["kind"] for f in header_token_flags([("X-Debug", token)])] == ["credential"]


def test_the_rules_are_detect_secrets_own() -> None:
    """netjail carries the patterns (the proxy cannot import detect-secrets); they must not drift from it."""
    if importlib.util.find_spec("detect_secrets") is None:
        pytest.skip("detect-secrets is not installed (the test extra installs it)")
    script = runpy.run_path(str(REPO / "scripts" / "update-token-rules"))
    assert [tuple(r) for r in script["upstream"]()] == [tuple(r) for r in RULES]
    assert importlib.metadata.version("detect-secrets") == DETECT_SECRETS_VERSION
