"""netjail.detect.secrets: a configured secret is found in every encoding, across chunk boundaries, and replaced;
records and flags name it and show a digest, never the value. Every negative row has a harmless control beside it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from netjail.detect import secrets as audit
from netjail.detect.flags import BodyScanner
from netjail.detect.secrets import Secrets, encoded_forms, values_from_file

SECRET = b"tok_9fQ2xLm4Zr8Wv1Kp"


# ---------------------------------------------------------------------------------------------------------
# Secrets: found in every encoding, across chunk boundaries, and replaced
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", range(3))
@pytest.mark.parametrize("urlsafe", [False, True])
def test_secret_found_inside_longer_base64_at_every_alignment(offset: int, urlsafe: bool) -> None:
    secrets = Secrets.from_values([("env:T", SECRET)])
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = encode(b"x" * offset + SECRET + b" and some more")
    assert [h.encoding for h in secrets.find(text)] == ["base64"]
    control = encode(b"x" * offset + SECRET[:-3] + b"???" + b" and some more")
    assert secrets.find(control) == []


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"k=" + SECRET, "plain"),
        (b"k=" + SECRET.hex().encode(), "hex"),
        (b"k=" + SECRET.hex().upper().encode(), "hex"),
        (b"a=" + SECRET.replace(b"_", b"%5F"), "url-encoded"),  # quote() leaves '_': found by decoding
    ],
)
def test_secret_encodings_in_text(data: bytes, encoding: str) -> None:
    secrets = Secrets.from_values([("env:T", SECRET)])
    hits = secrets.find_text(data.decode())
    assert hits and hits[0].secret.name == "env:T"
    if encoding != "url-encoded":
        assert hits[0].encoding == encoding
    redacted, names = secrets.redact_text(data.decode())
    assert names == ["env:T"] and SECRET.decode() not in redacted and "[redacted secret env:T]" in redacted
    assert secrets.find_text("k=tok_nothing_like_it") == []


def test_secret_split_across_chunks_at_every_offset() -> None:
    secrets = Secrets.from_values([("env:T", SECRET)])
    body = b"a" * 50 + SECRET + b"b" * 50
    for cut in range(1, len(body)):
        scanner = BodyScanner(secrets)
        scanner.feed(body[:cut])
        scanner.feed(body[cut:])
        assert [f["kind"] for f in scanner.flags()] == ["secret"], cut
    control = BodyScanner(secrets)
    control.feed(b"a" * 50 + SECRET[:10])
    control.feed(b"X" + SECRET[11:])
    assert control.flags() == []


def test_secret_flag_names_the_secret_and_a_digest_never_the_value() -> None:
    secrets = Secrets.from_values([("env:T", SECRET)])
    scanner = BodyScanner(secrets)
    scanner.feed(b'{"token": "' + SECRET + b'"}')
    (flag,) = scanner.flags()
    assert (
        "env:T" in flag["detail"] and "sha256:" in flag["detail"] and SECRET.decode() not in json.dumps(flag)
    )


def test_short_and_missing_secrets_are_reported_not_matched(tmp_path: Path) -> None:
    (tmp_path / "creds").write_text("[default]\naws_secret_access_key = AbCdEf0123456789xyz\nregion = eu\n")
    secrets, problems = Secrets.load(
        ["SET", "SHORT", "UNSET"],
        [tmp_path / "creds", tmp_path / "missing"],
        {"SET": "a-long-enough-value", "SHORT": "abc"},
    )
    assert {s.name for s in secrets.secrets} == {"env:SET", f"file:{tmp_path / 'creds'}"}
    assert len(problems) == 3 and any("UNSET" in p for p in problems) and any("SHORT" in p for p in problems)
    assert secrets.find(b"x=AbCdEf0123456789xyz")  # the value of a key = value line
    assert not secrets.find(b"region = eu") and not secrets.find(b"[default]")  # not values: never matched


def test_values_from_file() -> None:
    values = values_from_file(b"  the-whole-token-123\n")
    assert values == [b"the-whole-token-123"]
    assert b"s3cret-value-99" in values_from_file(b'password: "s3cret-value-99"\n')


def test_cut_partial_drops_a_kept_prefix_that_ends_inside_a_secret() -> None:
    secrets = Secrets.from_values([("env:T", SECRET)])
    assert secrets.cut_partial(b"body " + SECRET[:9]) == b"body "
    assert secrets.cut_partial(b"body ends normally") == b"body ends normally"


def test_encoded_forms_are_long_enough_to_be_specific() -> None:
    assert all(len(form) >= audit.MIN_SECRET for _, form in encoded_forms(SECRET))
