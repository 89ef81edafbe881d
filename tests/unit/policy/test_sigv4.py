"""SigV4: the test verifier against AWS's published vectors, netjail's re-signing (botocore) against the verifier."""

from __future__ import annotations

import hashlib

import pytest

from netjail.policy.sigv4 import classify, resign
from tests.support.sigv4 import signature, verify

# AWS's examples (the sig-v4 test suite's get-vanilla; the IAM ListUsers example of the signing documentation)
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
EMPTY = hashlib.sha256(b"").hexdigest()


def test_the_verifier_reproduces_awss_get_vanilla_vector() -> None:
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    assert (
        signature(
            SECRET,
            "GET",
            "/",
            headers,
            EMPTY,
            "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
            "host;x-amz-date",
            "20150830T123600Z",
        )
        == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_the_verifier_reproduces_awss_iam_list_users_example() -> None:
    headers = {
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
        "host": "iam.amazonaws.com",
        "x-amz-date": "20150830T123600Z",
    }
    assert (
        signature(
            SECRET,
            "GET",
            "/?Action=ListUsers&Version=2010-05-08",
            headers,
            EMPTY,
            "AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request",
            "content-type;host;x-amz-date",
            "20150830T123600Z",
        )
        == "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


FAKE_ID, FAKE_SECRET = "AKIAFAKEFAKEFAKEFAKE", "fakefakefakefakefakefakefakefakefakefake"
REAL_ID, REAL_SECRET = "AKIAREALREALREALREAL", "realrealrealrealrealrealrealrealrealreal"


def client_signed(payload: str | None, body: bytes = b"", service: str = "s3") -> dict[str, str]:
    """Headers as an SDK inside the jail sends them, signed with the placeholder keys (botocore as the client)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"Host": "bucket.allowed.test:8443", "Content-Type": "application/octet-stream"}
    if payload is not None:
        headers["X-Amz-Content-SHA256"] = payload
    request = AWSRequest("PUT", "https://bucket.allowed.test:8443/key%20one?x-id=PutObject", headers, body)
    SigV4Auth(Credentials(FAKE_ID, FAKE_SECRET, "fake-token"), service, "eu-west-1").add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        ("UNSIGNED-PAYLOAD", b"data"),
        ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", b"data"),
        (hashlib.sha256(b"data").hexdigest(), b"data"),
    ],
)
def test_a_placeholder_signed_request_is_re_signed_with_the_real_keys(payload: str, body: bytes) -> None:
    headers = client_signed(payload, body)
    target = "/key%20one?x-id=PutObject"
    assert not verify(
        REAL_SECRET, REAL_ID, "PUT", target, headers, body
    )  # control: the placeholder signature
    signed = classify(headers["authorization"], [("x-id", "PutObject")], headers.get("x-amz-content-sha256"))
    assert signed is not None and signed.access_key_id == FAKE_ID and signed.shape == "header"
    new = resign(
        signed,
        "PUT",
        f"https://bucket.allowed.test:8443{target}",
        list(headers.items()),
        body,
        REAL_ID,
        REAL_SECRET,
        "real-token",
    )
    sent = headers | {k.lower(): v for k, v in new.items()}
    assert sent["x-amz-security-token"] == "real-token"
    assert verify(REAL_SECRET, REAL_ID, "PUT", target, sent, body)


@pytest.mark.parametrize(
    ("authorization", "query", "payload", "shape"),
    [
        (
            "AWS4-HMAC-SHA256 Credential=K/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab",
            [],
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "streaming",
        ),
        (
            "AWS4-ECDSA-P256-SHA256 Credential=K/20250101/s3/aws4_request, SignedHeaders=host, Signature=ab",
            [],
            None,
            "sigv4a",
        ),
        (
            None,
            [("X-Amz-Credential", "K/20250101/us-east-1/s3/aws4_request"), ("X-Amz-Signature", "ab")],
            None,
            "presigned",
        ),
    ],
)
def test_what_cannot_be_re_signed_is_classified(
    authorization: str | None, query: list[tuple[str, str]], payload: str | None, shape: str
) -> None:
    signed = classify(authorization, query, payload)
    assert signed is not None and signed.shape == shape and signed.access_key_id == "K"


def test_a_request_without_sigv4_is_left_alone() -> None:
    assert classify("Bearer x", [("a", "b")], None) is None
