"""`netjail learn` proposes `*.parent` only where nobody else is handed names below the parent (the Public Suffix
List, netjail.net.suffixes): hosting providers' and cloud storage domains get exact hosts."""

import pytest

from netjail.inspect.learn import learn_from_records


def _would_deny(*hosts: str) -> list[dict[str, str]]:
    return [{"event": "flow", "host": h, "verdict": "allow", "reason": "would_deny"} for h in hosts]


@pytest.mark.parametrize(
    ("hosts", "entries", "withheld"),
    [
        (("a.example.test", "b.example.test", "c.example.test"), ["*.example.test"], []),
        (("a.example.co.uk", "b.example.co.uk", "c.example.co.uk"), ["*.example.co.uk"], []),
        (
            ("a.github.io", "b.github.io", "c.github.io"),
            ["a.github.io", "b.github.io", "c.github.io"],
            ["github.io"],
        ),
        (
            (
                "sts.amazonaws.com",
                "ec2.amazonaws.com",
                "iam.amazonaws.com",
            ),  # *.amazonaws.com: anyone's bucket
            ["ec2.amazonaws.com", "iam.amazonaws.com", "sts.amazonaws.com"],
            ["amazonaws.com"],
        ),
        (
            ("a.s3.amazonaws.com", "b.s3.amazonaws.com", "c.s3.amazonaws.com"),
            ["a.s3.amazonaws.com", "b.s3.amazonaws.com", "c.s3.amazonaws.com"],
            ["amazonaws.com"],
        ),
        (
            ("a.wordpress.com", "b.wordpress.com", "c.wordpress.com"),
            ["a.wordpress.com", "b.wordpress.com", "c.wordpress.com"],
            ["wordpress.com"],
        ),
        (("one.co.uk", "two.co.uk", "three.co.uk"), ["one.co.uk", "three.co.uk", "two.co.uk"], []),
        (
            ("a.example.test", "b.example.test"),
            ["a.example.test", "b.example.test"],
            [],
        ),  # fewer than WILDCARD_MIN
    ],
)
def test_wildcards_only_over_parents_nobody_else_shares(
    hosts: tuple[str, ...], entries: list[str], withheld: list[str]
) -> None:
    learned = learn_from_records(_would_deny(*hosts))
    assert sorted(learned.new_entries) == sorted(entries)
    assert learned.shared_parents == withheld


def test_a_request_rules_would_deny_proposes_no_domain() -> None:
    """In audit mode a request rule's denial (network.rules) is let through as would_deny on a host that is
    allowed already: learn proposes domains, so it proposes none for it."""
    records = [
        {
            "event": "flow",
            "host": "github.com",
            "verdict": "allow",
            "reason": "would_deny",
            "rule": "github.com: default deny",
        },
        {
            "event": "flow",
            "host": "new.test",
            "verdict": "allow",
            "reason": "would_deny",
            "rule": "default-deny",
        },
    ]
    assert learn_from_records(records).new_hosts == ["new.test"]  # type: ignore[arg-type]
