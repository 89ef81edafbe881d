"""netjail/inspect/config.py diff: what a change allows or denies, computed with the policy matcher (a table)."""

from __future__ import annotations

import pytest

from netjail.inspect.config import diff
from netjail.settings import Settings


def settings(allowed=(), denied=(), hosts=None, mode="enforce", fs=None) -> Settings:
    return Settings.model_validate(
        {
            "network": {
                "allowedDomains": list(allowed),
                "deniedDomains": list(denied),
                "hosts": hosts or {},
                "mode": mode,
            },
            "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": [], **(fs or {})},
        },
        by_alias=True,
        by_name=False,
    )


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (settings(["a.test"]), settings(["a.test"]), []),
        (settings([]), settings(["a.test"]), ["now allowed: a.test, ports 443 and 80 (by 'a.test'; was not in allowedDomains)"]),
        (settings(["a.test"]), settings([]), ["now denied: a.test, ports 443 and 80 (not in allowedDomains; was by 'a.test')"]),
        (settings(["a.test"]), settings(["a.test:443"]), ["now denied: a.test, port 80 (not in allowedDomains; was by 'a.test')"]),
        # a wildcard allows names below it, not the name itself
        (settings([]), settings(["*.b.test"]), ["now allowed: any name below b.test, ports 443 and 80 (by '*.b.test'; was not in allowedDomains)"]),
        (settings(["*.b.test"]), settings(["*.b.test"], ["x.b.test"]), ["now denied: x.b.test, ports 443 and 80 (deniedDomains 'x.b.test'; was by '*.b.test')"]),
        # an exact entry already covered by a wildcard changes nothing
        (settings(["*.b.test"]), settings(["*.b.test", "x.b.test"]), []),
        (settings(["*.b.test"]), settings(["x.b.test"]), ["now denied: any name below b.test, ports 443 and 80 (not in allowedDomains; was by '*.b.test')"]),
        (settings(["a.test"]), settings(["a.test"], ["*"]), ["now denied: a.test, ports 443 and 80 (deniedDomains '*'; was by 'a.test')"]),
        (settings([]), settings(["192.0.2.0/24:22"]), ["now allowed: 192.0.2.0/24 (e.g. 192.0.2.1), port 22 (by '192.0.2.0/24:22'; was not in allowedDomains)"]),
        (settings([]), settings([], mode="audit"), ["network.mode: 'enforce' -> 'audit'"]),
        (settings(["m.test"]), settings(["m.test"], hosts={"m.test": "10.0.0.5"}), ["now pinned: m.test -> 10.0.0.5 (private: reachable only because it is pinned)"]),
        (settings(["m.test"], hosts={"m.test": "10.0.0.5"}), settings(["m.test"]), ["no longer pinned: m.test (was 10.0.0.5); it resolves through DNS again"]),
        (settings(fs={"denyRead": ["~/.ssh"]}), settings(fs={"allowWrite": [".", "/srv"]}), ["no longer hidden: ~/.ssh", "now writable: /srv"]),
        (settings(), settings(fs={"denyWrite": ["locked"]}), ["now read-only: locked"]),
    ],
)  # fmt: skip
def test_a_change_in_words(before: Settings, after: Settings, expected: list[str]) -> None:
    assert diff(before, after) == expected
