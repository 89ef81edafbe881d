"""policy/credentials.py: placeholders of the real value's shape, srt's masking forms, streaming substitution."""

from __future__ import annotations

import base64
import json
import re

import pytest

from netjail.policy.credentials import (
    SRT_PREFIX,
    StreamSwap,
    jwt_parts,
    mask_text,
    mint_placeholder,
    replace_all,
)


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


JWT = f"{_b64url({'alg': 'RS256', 'typ': 'JWT'})}.{_b64url({'sub': 'user-1', 'secret': 'claim-secret-value-0123456789'})}.c2ln"


@pytest.mark.parametrize(
    ("real", "prefix", "alphabet"),
    [
        ("ghp_" + "aB3" * 12, "ghp_", r"[A-Za-z0-9]"),
        ("AKIAIOSFODNN7EXAMPLE", "AKIA", r"[A-Z0-9]"),
        ("sk-ant-api03-" + "xY_9-" * 16, "sk-ant-api03-", r"[A-Za-z0-9_-]"),
        ("0123456789abcdef" * 2, "", r"[0-9a-f]"),  # hexadecimal stays hexadecimal
        ("npm_" + "a1" * 18, "npm_", r"[a-z0-9]"),
    ],
)
def test_a_placeholder_has_the_real_values_length_prefix_and_character_classes(
    real: str, prefix: str, alphabet: str
) -> None:
    placeholder = mint_placeholder(real)
    assert placeholder != real and len(placeholder) == len(real) and placeholder.startswith(prefix)
    assert re.fullmatch(f"{re.escape(prefix)}{alphabet}+", placeholder)
    assert [c for c in real if c in "-_."] == [c for c in placeholder if c in "-_."]  # separators in place


def test_a_value_too_short_for_64_random_bits_gets_srts_form() -> None:
    assert mint_placeholder("hunter2!").startswith(SRT_PREFIX)


def test_placeholders_never_nest() -> None:
    first = mint_placeholder("a" * 40)
    assert first not in mint_placeholder("a" * 80, taken=[first])


def test_extract_masks_each_distinct_capture_and_keeps_the_rest() -> None:
    real = "user=alice token=AAAAAAAAAAAAAAAAAAAAAAAA\nagain=AAAAAAAAAAAAAAAAAAAAAAAA other=BBBBBBBBBBBBBBBBBBBBBBBB"
    result = mask_text(real, extract=re.compile(r"token=(\w+)"))
    assert result.matched and len(result.swaps) == 1 and result.text.startswith("user=alice token=")
    assert "again=AAAA" in result.text  # not a match, and maskDuplicates is off
    duplicated = mask_text(real, extract=re.compile(r"token=(\w+)"), mask_duplicates=True)
    assert "AAAA" not in duplicated.text and "other=BBBB" in duplicated.text


def test_extract_that_matches_nothing_says_so() -> None:
    assert not mask_text("nothing here", extract=re.compile(r"token=(\w+)")).matched


def test_whole_value_and_whole_file_masking() -> None:
    file_result = mask_text("secret-token-value-0123456789\n", whole_value=False)
    assert file_result.text.endswith("\n") and file_result.swaps[0].real == "secret-token-value-0123456789"


def test_jwt_is_replaced_by_a_parseable_fake_with_hs256() -> None:
    result = mask_text(JWT, decode="jwt", extract=re.compile(r"\A(.*)\Z", re.S))
    header, payload = jwt_parts(result.text) or ({}, {})
    assert header["alg"] == "HS256" and payload["exp"] > 2_000_000_000 and result.swaps[0].real == JWT


def test_mask_claims_rebuilds_the_token_around_claim_placeholders() -> None:
    result = mask_text(JWT, decode="jwt", mask_claims=["secret", "absent"])
    _, payload = jwt_parts(result.text) or ({}, {})
    assert payload["sub"] == "user-1" and payload["secret"] != "claim-secret-value-0123456789"
    reals = {s.real for s in result.swaps}
    assert reals == {JWT, "claim-secret-value-0123456789"}


def test_a_value_that_is_not_a_jwt_matches_nothing() -> None:
    assert not mask_text("eyJnot.a.jwt", decode="jwt").matched


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_stream_swap_finds_needles_across_any_chunk_boundary(size: int) -> None:
    data = b"xx" + b"PLACEHOLDER" + b"y" * 9 + b"PLACEHOLDER" + b"PLACEHOLD"
    swap = StreamSwap([(b"PLACEHOLDER", b"real-value!")])
    out = b"".join(swap(data[i : i + size]) for i in range(0, len(data), size)) + swap(b"")
    assert out == data.replace(b"PLACEHOLDER", b"real-value!") and swap.counts == {b"PLACEHOLDER": 2}


def test_replace_all_counts() -> None:
    assert replace_all("a P b P", [("P", "R")]) == ("a R b R", {"P": 2})
