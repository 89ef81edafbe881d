"""Credentials inside the values of inherited variables: taken out before the command sees them.

Index and proxy URLs carry credentials in the places URLs allow: `https://user:token@index/simple`
(`PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`, `PIP_FIND_LINKS`, `NPM_CONFIG_REGISTRY` in any case, `GOPROXY`'s list,
`GOFLAGS`), or a query parameter (`?token=…`). A variable passed by default keeps its URLs without them; a
variable named in envPassthrough passes whole, because the user asked for it (precedence: credentials, once
they exist, then envPassthrough, then these defaults). A value that holds a URL whose credentials cannot be
told apart (it does not parse) is not passed at all. Only names are reported, never values.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from netjail.detect.flags import SIGNING_PARAMS, url_flags

# Query parameters that carry a credential (besides the signatures of presigned URLs the audit knows).
CREDENTIAL_PARAMS = SIGNING_PARAMS | frozenset(
    {
        "access_token", "auth", "auth_token", "authorization", "api_key", "apikey", "api-key", "key", "password",
        "passwd", "pwd", "secret", "client_secret", "private_token", "private-token", "refresh_token",
        "id_token", "sessionid", "credential", "credentials",
    }
)  # fmt: skip
# A URL inside a value: lists are separated by spaces, commas or pipes (GOPROXY), values may be quoted.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s,|\"']+")


class Unparseable(ValueError):
    """A URL in the value whose credentials cannot be separated from the rest."""


@dataclass(frozen=True)
class Scrubbed:
    env: dict[str, str]
    cleaned: tuple[str, ...]  # names whose value lost a credential
    dropped: tuple[str, ...]  # names not passed at all: a URL in the value did not parse


def scrub_url(url: str) -> str:
    """`url` without userinfo and without credential query parameters (a query that still looks like it
    carries a token, as the audit's URL detector judges it, goes whole)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as e:
        raise Unparseable(str(e)) from e
    netloc = parts.netloc
    if "@" in netloc:
        if not host:
            raise Unparseable("no host after the credentials")
        shown = f"[{host}]" if ":" in host else host
        netloc = f"{shown}:{port}" if port is not None else shown
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        kept = [(name, value) for name, value in pairs if name.lower() not in CREDENTIAL_PARAMS]
        if len(kept) != len(pairs):
            query = urllib.parse.urlencode(kept)
        if url_flags(f"/?{query}"):
            query = ""
    if netloc == parts.netloc and query == parts.query:
        return url
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub_value(value: str) -> str:
    """Every URL in `value` scrubbed (raises Unparseable when one cannot be)."""
    return _URL.sub(lambda match: scrub_url(match.group(0)), value)


def scrub_environment(env: Mapping[str, str], passthrough: Iterable[str] = ()) -> Scrubbed:
    """The inherited environment with credentials taken out of every value not named in `passthrough`."""
    whole = set(passthrough)
    out: dict[str, str] = {}
    cleaned: list[str] = []
    dropped: list[str] = []
    for name, value in env.items():
        if name in whole or "://" not in value:
            out[name] = value
            continue
        try:
            scrubbed = scrub_value(value)
        except Unparseable:
            dropped.append(name)
            continue
        out[name] = scrubbed
        if scrubbed != value:
            cleaned.append(name)
    return Scrubbed(out, tuple(cleaned), tuple(dropped))
