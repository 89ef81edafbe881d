"""netjail/detect/canaries.py: the canaries minted for a run have the shapes the credential detectors know, under
names no tool reads by default; and each is found in the forms it may leave in (and not in the ones it may not)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse

import pytest

from netjail.detect.canaries import (
    DECOY_FILE,
    ENV_CANARIES,
    READ_BY_DEFAULT,
    READ_PREFIXES,
    CanaryMatcher,
    mint,
    with_canaries,
)
from netjail.detect.flags import BodyScanner
from netjail.detect.secrets import Secrets
from netjail.detect.tokens import find_tokens, header_token_flags, url_token_flags

SHAPES = {
    "DEPLOY_AWS_KEY_ID": r"AKIA[A-Z2-7]{16}",
    "DEPLOY_AWS_SECRET": r"[A-Za-z0-9+/]{40}",
    "LEGACY_GH_TOKEN": r"ghp_[A-Za-z0-9]{36}",
    "BACKUP_NPM_TOKEN": r"npm_[A-Za-z0-9]{36}",
    "BACKUP_PYPI_TOKEN": r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{70,}",
    "LLM_FALLBACK_KEY": r"sk-ant-api03-[A-Za-z0-9_-]{93}AA",
    "LEGACY_OPENAI_KEY": r"sk-proj-[A-Za-z0-9_-]{100,}",
}
DETECTED_AS = {  # what netjail's own credential-shape detectors call each (netjail/detect/tokens.py)
    "DEPLOY_AWS_KEY_ID": "AWS access key",
    "LEGACY_GH_TOKEN": "GitHub token",
    "BACKUP_PYPI_TOKEN": "PyPI token",
    "LLM_FALLBACK_KEY": "Anthropic API key",
    "LEGACY_OPENAI_KEY": "OpenAI API key",
}


def test_each_canary_has_its_shape_and_every_run_gets_new_ones() -> None:
    first, second = mint(), mint()
    assert set(first.env) == set(SHAPES)
    for name, pattern in SHAPES.items():
        assert re.fullmatch(pattern, first.env[name]), name
        assert first.env[name] != second.env[name]
    for name, label in DETECTED_AS.items():
        assert label in find_tokens(first.env[name].encode()), name


def test_github_and_npm_tokens_carry_a_valid_checksum() -> None:
    plan = mint()
    for name in ("LEGACY_GH_TOKEN", "BACKUP_NPM_TOKEN"):
        body, check = plan.env[name][4:34], plan.env[name][34:]
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        number = 0
        for ch in check:
            number = number * 62 + digits.index(ch)
        assert number == binascii.crc32(body.encode())


def test_no_canary_is_planted_under_a_name_a_tool_reads_by_default() -> None:
    for name, _ in ENV_CANARIES:
        assert name not in READ_BY_DEFAULT
        assert not name.upper().startswith(READ_PREFIXES), name


def test_the_decoy_file_and_a_variable_the_command_already_has() -> None:
    plan = mint(existing={"LEGACY_GH_TOKEN"})
    assert "LEGACY_GH_TOKEN" not in plan.env  # the user's own value stays
    assert "[deploy]" in plan.file_text and DECOY_FILE.startswith("/run/")
    in_file = [c for c in plan.canaries if c.name.startswith(DECOY_FILE)]
    assert len(in_file) == 3 and all(c.value in plan.file_text for c in in_file)
    assert mint(with_file=False).file_text == ""


@pytest.fixture
def matcher() -> tuple[CanaryMatcher, str]:
    plan = mint()
    return CanaryMatcher(plan.canaries), plan.env["LEGACY_GH_TOKEN"]


def _b32(value: str) -> str:
    return base64.b32encode(value.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("how", "encode"),
    [
        ("plain", lambda v: f"x={v}"),
        ("plain", lambda v: urllib.parse.quote(f"t:{v}", safe="")),  # an alphanumeric value quotes as itself
        ("hex", lambda v: v.encode().hex()),
        ("hex", lambda v: v.encode().hex().upper()),
        ("base64", lambda v: base64.b64encode(f"user:{v}".encode()).decode()),
        ("base64", lambda v: base64.urlsafe_b64encode(f"ab{v}".encode()).decode()),
        ("base32", lambda v: _b32("x" + v)),
        ("base32", lambda v: _b32(v).lower()),
    ],
)
def test_a_canary_is_found_in_text_in_each_form(matcher, how: str, encode) -> None:
    m, value = matcher
    found = m.in_text(encode(value))
    assert [s.canary for s in found] == ["LEGACY_GH_TOKEN"] and found[0].how == how


def test_a_value_with_url_characters_is_found_percent_encoded() -> None:
    plan = mint()
    m, secret = CanaryMatcher(plan.canaries), plan.env["DEPLOY_AWS_SECRET"]
    found = m.in_text("/?s=" + urllib.parse.quote(secret + "/+", safe=""))
    assert [s.canary for s in found] == ["DEPLOY_AWS_SECRET"]


def test_controls_are_not_found(matcher) -> None:
    m, value = matcher
    assert m.in_text("ghp_" + "a" * 36) == []
    assert m.in_text(value[:-3]) == []  # not the whole value
    assert m.in_text(base64.b64encode(value[::-1].encode()).decode()) == []  # transformed beyond the forms
    assert m.in_name("registry.npmjs.org") == []


def test_json_bodies_are_decoded(matcher) -> None:
    m, value = matcher
    escaped = "".join(f"\\u{ord(c):04x}" for c in value)
    assert m.in_bytes(f'{{"k": "{escaped}"}}'.encode()) == []  # \\u escapes: only JSON parsing sees it
    assert [s.canary for s in m.in_json(f'{{"k": "{escaped}"}}'.encode())] == ["LEGACY_GH_TOKEN"]
    assert m.in_json(b"not json") == []
    secret = next(c for c in m.canaries if c.name == "DEPLOY_AWS_SECRET").value
    assert m.in_bytes(json.dumps({"s": secret.replace("/", "\\/")}).encode().replace(b"\\\\/", b"\\/"))


def test_dns_names_whatever_the_case_and_the_labels(matcher) -> None:
    m, value = matcher
    hexed = value.encode().hex()
    split = ".".join(hexed[i : i + 30] for i in range(0, len(hexed), 30)) + ".x.test"
    assert [s.canary for s in m.in_name(split)] == ["LEGACY_GH_TOKEN"]
    assert m.in_name(_b32(value).upper()[:40] + "." + _b32(value).upper()[40:] + ".example")
    assert m.in_name(value.lower() + ".x.test")
    assert m.in_name("x.test") == [] and m.in_name(hexed[:50] + ".x.test") == []
    shown = m.redact_name(split)
    assert shown == "canary-LEGACY-GH-TOKEN.x.test" and hexed[:30] not in shown


def test_records_name_a_canary_and_the_shape_detectors_skip_canaries_and_placeholders(matcher) -> None:
    m, value = matcher
    placeholder = "ghp_" + "P1aceh0lder" * 3 + "abc"
    secrets = with_canaries(Secrets(), m.canaries, [placeholder])
    redacted, names = secrets.redact_text(f"/q?t={value}")
    assert value not in redacted and names == ["canary:LEGACY_GH_TOKEN"]
    header = [("x-leak", value), ("x-ph", placeholder)]
    assert header_token_flags(header, secrets.ignored) == []
    assert url_token_flags([f"/?a={value}&b={placeholder}"], secrets.ignored) == []
    other = "ghp_" + "Z9" * 18  # control: a token nobody planted is still a finding
    assert [f["kind"] for f in header_token_flags([("x-leak", other)], secrets.ignored)] == ["credential"]
    scanner = BodyScanner(secrets)
    scanner.feed(f"token={value}&p={placeholder}".encode())
    kinds = [f["kind"] for f in scanner.flags()]
    assert "canary" in kinds and "credential" not in kinds
