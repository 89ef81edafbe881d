"""srt's `credentials` block: the sources (files, environment variables) a run keeps from the command, and for
`mode: "mask"` what the command sees instead and where the proxy puts the real value back.

netjail honours srt's meaning (srt 0.0.81, `sandbox-config.ts`) with these differences, all on the side of failing
closed: `onExtractNoMatch` defaults to "error" (srt: "warn"), and "warn" withholds the credential with a warning
instead of leaving the real value readable; an inject host inside `tlsTerminate.excludeDomains` is refused (srt
refuses only a host that is excluded entirely). AWS pairs are re-signed as in srt (netjail/policy/sigv4.py).
docs/credentials.md describes what the command sees and what the proxy does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from netjail.net.domains import Pattern
from netjail.settings.errors import Problem
from netjail.settings.fields import EnvName, FsPath, HeaderName, HostPattern, NonEmptyStr, SettingsModel
from netjail.settings.filesystem import inert_deny_glob
from netjail.utils.text import quoted

if TYPE_CHECKING:
    from netjail.settings.network import NetworkSettings

CredentialMode = Literal["deny", "mask"]
# The headers API providers read keys from (OpenAI, GitHub, npm: authorization; Anthropic: x-api-key; Azure:
# api-key; GitLab: private-token; others: x-auth-token).
DEFAULT_PIN_HEADERS = ("authorization", "x-api-key", "api-key", "private-token", "x-auth-token")
OnExtractNoMatch = Literal["warn", "deny", "error"]

# JavaScript regular-expression syntax that Python's `re` does not read, or reads with another meaning. srt compiles
# `extract` as a JavaScript RegExp; netjail compiles it with Python's `re` (ASCII classes, as JavaScript without
# the `u` flag), after rewriting JavaScript's named groups `(?<name>…)` and `\k<name>` to Python's spelling.
_JS_ONLY = (
    (re.compile(r"\\[pP]\{"), r"Unicode property escapes (\p{…})"),
    (re.compile(r"\\u\{"), r"code point escapes (\u{…})"),
    (re.compile(r"\\c[A-Za-z]"), r"control escapes (\cX)"),
    (re.compile(r"(?<!\\)\[\^?\]"), "an empty class [] or [^]"),
    (re.compile(r"\(\?P"), "Python's own (?P…) groups (srt would refuse them)"),
)
_JS_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")
_JS_BACKREF = re.compile(r"\\k<([A-Za-z_]\w*)>")
EXTRACT_FIX = r'write a pattern whose group 1 is the secret, e.g. "token:\\s*(\\S+)"'


def compile_extract(pattern: str) -> re.Pattern[str]:
    """An `extract` pattern as netjail runs it; raises Problem when it cannot be honoured with srt's meaning."""
    for construct, name in _JS_ONLY:
        if construct.search(pattern):
            raise Problem(f"extract uses {name}, which netjail cannot match the way srt does", EXTRACT_FIX)
    python = _JS_BACKREF.sub(r"(?P=\1)", _JS_NAMED_GROUP.sub("(?P<", pattern))
    try:
        compiled = re.compile(python, re.ASCII)
    except re.error as e:
        raise Problem(f"extract is not a valid regular expression ({e})", EXTRACT_FIX) from None
    if compiled.groups < 1:
        raise Problem("extract has no capturing group: group 1 is the secret (srt's meaning)", EXTRACT_FIX)
    return compiled


def _check_extract(value: str | None) -> str | None:
    if value is not None:
        compile_extract(value)
    return value


class _MaskedSource(SettingsModel):
    """What envVars[] and files[] entries share."""

    mode: CredentialMode
    extract: str | None = None
    on_extract_no_match: OnExtractNoMatch | None = Field(
        default=None, description='Default "error" in netjail (srt: "warn"); "warn" withholds the credential.'
    )
    decode: Literal["jwt"] | None = None
    mask_claims: list[NonEmptyStr] | None = None
    inject_hosts: list[HostPattern] | None = None
    # netjail addition: at an inject host these headers must carry this run's placeholder (pinning to your account)
    pin_headers: list[HeaderName] | None = Field(
        default=None,
        description=(
            "Headers that, on a request to an inject host, must carry this run's placeholder (Basic auth decoded):"
            " another value there is refused, so the command cannot bring its own key. Default: authorization,"
            " x-api-key, api-key, private-token, x-auth-token; [] turns pinning off."
        ),
    )

    _extract = field_validator("extract")(lambda v: _check_extract(v))

    @model_validator(mode="after")
    def _consistent(self) -> _MaskedSource:
        if self.mask_claims is not None and self.decode is None:
            raise Problem(
                "maskClaims names claims inside a decoded payload, and decode is not set",
                'set decode to "jwt", or remove maskClaims to mask the whole value',
                at=("maskClaims",),
            )
        if self.mask_claims is not None and not self.mask_claims:
            raise Problem(
                "maskClaims is empty: no claim would ever be masked",
                "omit maskClaims to mask the whole token, or list the claims to protect",
                at=("maskClaims",),
            )
        if self.inject_hosts is not None and not self.inject_hosts:
            raise Problem(
                "injectHosts is empty: the credential would be masked but never injected",
                "omit injectHosts (the default is network.allowedDomains), or list the hosts",
                at=("injectHosts",),
            )
        return self

    @property
    def pinned_headers(self) -> list[str]:
        return list(DEFAULT_PIN_HEADERS) if self.pin_headers is None else list(self.pin_headers)

    @property
    def no_match(self) -> OnExtractNoMatch:
        return self.on_extract_no_match or "error"


class CredentialFile(_MaskedSource):
    path: FsPath
    mask_duplicates: bool | None = None

    @model_validator(mode="after")
    def _srt_rules(self) -> CredentialFile:
        if self.mode == "mask" and self.path.endswith("/"):
            raise Problem(
                'mode "mask" applies to a single file, not a directory',
                'use mode "deny" for a directory, or name the credential file inside it',
                at=("path",),
            )
        if (problem := inert_deny_glob(self.path)) is not None:
            problem.at = ("path",)
            raise problem
        if self.mode == "mask" and any(c in self.path for c in "*?["):
            raise Problem(
                'mode "mask" needs one file, and a glob may name many or none',
                'name the file itself, or use mode "deny" for the glob',
                at=("path",),
            )
        return self


class CredentialEnvVar(_MaskedSource):
    name: EnvName


class AwsPair(SettingsModel):
    access_key_id_var: EnvName
    secret_access_key_var: EnvName
    session_token_var: EnvName | None = None


Sigv4Policy = Literal["deny", "passthrough"]


class Sigv4(SettingsModel):
    streaming: Sigv4Policy | None = None
    presigned: Sigv4Policy | None = None
    sigv4a: Sigv4Policy | None = Field(default=None, alias="sigv4a")  # to_camel would say "sigv4A"


class CredentialsSettings(SettingsModel):
    """srt's credential sources: "deny" keeps them from the command; "mask" shows it a placeholder that the proxy
    replaces with the real value on requests to the credential's inject hosts (docs/credentials.md)."""

    files: list[CredentialFile] = []
    env_vars: list[CredentialEnvVar] = []
    allow_plaintext_inject: bool = False
    aws_pairs: list[AwsPair] = []
    sigv4: Sigv4 | None = None

    @model_validator(mode="after")
    def _pairs_link_masked_variables(self) -> CredentialsSettings:
        """srt's rules: each slot names a whole-value masked variable, and each variable fills one slot."""
        entries = {v.name: v for v in self.env_vars}
        seen: set[str] = set()
        for index, pair in enumerate(self.aws_pairs):
            for field_name, alias in (
                ("access_key_id_var", "accessKeyIdVar"),
                ("secret_access_key_var", "secretAccessKeyVar"),
                ("session_token_var", "sessionTokenVar"),
            ):
                name = getattr(pair, field_name)
                if name is None:
                    continue
                at = ("awsPairs", index, alias)
                entry = entries.get(name)
                if name in seen:
                    raise Problem(
                        f"{name} fills more than one awsPairs slot", "name each variable once", at=at
                    )
                seen.add(name)
                if entry is None or entry.mode != "mask":
                    raise Problem(
                        f'{name} is not a credentials.envVars entry with mode "mask": a pair links masked variables',
                        f'add {{"name": "{name}", "mode": "mask"}} to credentials.envVars',
                        at=at,
                    )
                if entry.extract is not None or entry.decode is not None:
                    raise Problem(
                        f"{name} uses extract or decode, and a pair member must be masked whole: the proxy "
                        "recognises the placeholder key id exactly and signs with the whole real secret",
                        f"remove extract/decode from the {name} entry",
                        at=at,
                    )
        return self

    @property
    def pairs(self) -> list[AwsPair]:
        """awsPairs, and srt's automatic pair: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)
        masked whole-value and named in no explicit pair."""
        whole = {v.name for v in self.env_vars if v.mode == "mask" and v.extract is None and v.decode is None}
        named = {
            n
            for p in self.aws_pairs
            for n in (p.access_key_id_var, p.secret_access_key_var, p.session_token_var)
        }
        pairs = list(self.aws_pairs)
        if {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= whole and not named & {
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        }:
            token = "AWS_SESSION_TOKEN" if "AWS_SESSION_TOKEN" in whole - named else None
            pairs.append(
                AwsPair.model_construct(
                    access_key_id_var="AWS_ACCESS_KEY_ID",
                    secret_access_key_var="AWS_SECRET_ACCESS_KEY",
                    session_token_var=token,
                )
            )
        return pairs

    @property
    def masked(self) -> list[tuple[str, CredentialFile | CredentialEnvVar]]:
        """(settings path, entry) of every mask-mode entry."""
        found: list[tuple[str, CredentialFile | CredentialEnvVar]] = []
        found += [(f"credentials.envVars[{i}]", v) for i, v in enumerate(self.env_vars) if v.mode == "mask"]
        found += [(f"credentials.files[{i}]", f) for i, f in enumerate(self.files) if f.mode == "mask"]
        return found


def pattern_covers(outer: Pattern, inner: Pattern) -> bool:
    """Every host `inner` matches is matched by `outer` (ports aside: injection is per host, as in srt)."""
    if outer.kind == "any":
        return True
    if inner.kind == "exact":
        return (outer.kind == "exact" and outer.host == inner.host) or (
            outer.kind == "wildcard" and inner.host.endswith("." + outer.host)
        )
    if inner.kind == "wildcard":
        return outer.kind == "wildcard" and (
            inner.host == outer.host or inner.host.endswith("." + outer.host)
        )
    if inner.kind in ("ip", "cidr") and outer.kind in ("ip", "cidr"):
        import ipaddress

        a, b = ipaddress.ip_network(outer.host), ipaddress.ip_network(inner.host)
        return a.version == b.version and b.subnet_of(a)  # type: ignore[arg-type]
    return False


def effective_inject_hosts(
    entry: CredentialFile | CredentialEnvVar, network: NetworkSettings
) -> list[Pattern]:
    """The entry's injectHosts, or srt's default: every allowed domain (ports dropped)."""
    if entry.inject_hosts is not None:
        return list(entry.inject_hosts)
    return [Pattern(p.source, p.kind, p.host, None) for p in network.allowed_domains]


def check_inject_hosts(credentials: CredentialsSettings, network: NetworkSettings) -> None:
    """Each inject host must be reachable (covered by allowedDomains) and terminated (not in excludeDomains)."""
    excluded = network.tls_terminate.exclude_domains
    for where, entry in credentials.masked:
        at = tuple(int(part) if part.isdigit() else part for part in re.split(r"[.\[\]]+", where) if part)[1:]
        for index, host in enumerate(entry.inject_hosts or []):
            if not any(pattern_covers(allowed, host) for allowed in network.allowed_domains):
                raise Problem(
                    f"injectHosts entry {quoted(host.source)} is not reachable through network.allowedDomains",
                    f"add {quoted(host.source)} (or a wildcard covering it) to allowedDomains, or remove it here",
                    at=(*at, "injectHosts", index),
                )
        for index, host in enumerate(entry.inject_hosts or []):
            clash = next((e for e in excluded if pattern_covers(e, host)), None)
            if clash is not None:
                raise Problem(
                    f"injectHosts entry {quoted(host.source)} is inside network.tlsTerminate.excludeDomains entry "
                    f"{quoted(clash.source)}: injection needs a terminated TLS connection, so that host would only "
                    "ever receive the placeholder",
                    "remove the host from one of the two lists",
                    at=(*at, "injectHosts", index),
                )
        defaults = effective_inject_hosts(entry, network)
        if (
            entry.inject_hosts is None
            and defaults
            and all(any(pattern_covers(e, h) for e in excluded) for h in defaults)
        ):
            raise Problem(
                "this masked credential has no injectHosts, so it goes to network.allowedDomains, and "
                "tlsTerminate.excludeDomains covers every one of them: it could never be injected",
                "list in injectHosts the hosts that should receive the real value",
                at=at,
            )
