"""Public suffixes: which part of a name its registrant holds, from the Public Suffix List (the copy that ships
with the `publicsuffixlist` package: nothing is fetched). The list is read on first use, once per process.

One list, three readers:
- the audit's burst counter counts names per registrable domain: a DNS tunnel needs a zone its owner controls;
- `netjail learn` proposes `*.parent` only over a parent below which nobody else is handed names;
- the settings refuse a wildcard over a registry's suffix (`*.co.uk`), not over a hosting provider's
  (`*.github.io`, the list's private section), which a user may mean.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

# Hosting domains where anyone can get a name that the list does not name (yet): shared like its private entries.
UNLISTED_SHARED = (
    "b-cdn.net",
    "glitch.me",
    "googleusercontent.com",
    "herokudns.com",
    "netlify.com",
    "tumblr.com",
    "wordpress.com",
)


class _Rules:
    """The list's rules, as written and in punycode (names reach netjail normalised to punycode)."""

    def __init__(self) -> None:
        from publicsuffixlist import PSLFILE

        self.icann: list[str] = []
        self.private: list[str] = list(UNLISTED_SHARED)
        section = None
        with open(PSLFILE, encoding="utf-8") as f:
            for line in f:
                if line.startswith("//"):
                    if "===BEGIN ICANN DOMAINS===" in line:
                        section = self.icann
                    elif "===BEGIN PRIVATE DOMAINS===" in line:
                        section = self.private
                    continue
                fields = line.split()
                if not fields or section is None:
                    continue
                rule = fields[0].lower()
                section.append(rule)
                if not rule.isascii():
                    exception = "!" if rule.startswith("!") else ""
                    section.append(exception + punycode(rule.removeprefix("!")))


def punycode(rule: str) -> str:
    """A rule's non-ASCII labels in punycode. The list's labels are already in the form IDNA 2003's nameprep
    gives, so this is what `encodings.idna.ToASCII` makes of them (the tests check), four times faster."""
    return ".".join(
        label if label.isascii() else "xn--" + label.encode("punycode").decode() for label in rule.split(".")
    )


@functools.cache
def _rules() -> _Rules:
    return _Rules()


@functools.cache
def _list(private: bool) -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    rules = _rules()
    return PublicSuffixList(rules.icann + rules.private if private else rules.icann, accept_encoded_idn=False)


@functools.cache
def _holding_suffixes() -> frozenset[str]:
    """Names the list has a rule strictly below (`amazonaws.com`, for `s3.amazonaws.com`)."""
    rules = _rules()
    held: set[str] = set()
    for rule in (*rules.icann, *rules.private):
        labels = rule.removeprefix("!").split(".")  # `*.kawasaki.jp` holds names below `kawasaki.jp`
        held.update(".".join(labels[i:]) for i in range(1, len(labels)))
    return frozenset(held)


def _name(host: str) -> str | None:
    """`host` lowercase without its trailing dot, or None for an IP literal or an empty name."""
    name = host.lower().removesuffix(".")
    if not name or name.endswith(".") or ":" in name or name.rsplit(".", 1)[-1].isdigit():
        return None
    return name


def registrable_domain(host: str, *, private: bool = True) -> str | None:
    """The name a registrant holds that `host` is in: `example.co.uk` for `a.b.example.co.uk`, `me.github.io` for
    `x.me.github.io` (a hosting provider's names count as registered). With `private=False` only registries'
    suffixes count (`github.io`). Lowercase, without a trailing dot; None for IP literals, single labels, public
    suffixes themselves and malformed names. A top-level domain the list does not know (`.test`) is a suffix."""
    name = _name(host)
    return None if name is None else _list(private).privatesuffix(name)


def is_public_suffix(name: str, *, private: bool = True) -> bool:
    """`co.uk`, `com`, and with `private` (the default) `github.io`: names under which others register theirs."""
    normalised = _name(name)
    return normalised is not None and _list(private).is_public(normalised)


def is_shared_parent(name: str) -> bool:
    """Whether other parties may hold names below `name`: it is a public suffix, or the list names one below it
    (`amazonaws.com` holds `s3.amazonaws.com`). A wildcard over it would admit other people's hosts."""
    normalised = _name(name)
    return normalised is not None and (is_public_suffix(normalised) or normalised in _holding_suffixes())
