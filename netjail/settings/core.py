"""netjail's settings: an srt (sandbox-runtime 0.0.78) settings file, read unchanged, plus netjail's additions.

Every key srt's schema knows has one verdict (see `SRT_KEYS` and docs/srt-compat.md): honoured with srt's
meaning, accepted with a one-line warning (ignoring it cannot weaken the jail), or refused (honouring it
silently would weaken the jail, or it cannot be done). Keys neither srt nor netjail knows are refused, so a
typo never turns into a silently dropped rule. Loading has no side effect: it reads the file and, for presets,
the package managers' own configuration.

Run `python -m netjail.settings --schema` to print the JSON Schema committed as docs/settings.schema.json.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import json
import os
import re
import sys
import unicodedata
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from netjail.net.domains import Pattern, PatternError, normalize_host, parse_pattern
from netjail.settings.limits import NetworkLimits
from netjail.settings.presets import PresetError, expand_preset
from netjail.utils.status import ExitStatus
from netjail.utils.text import quoted, safe_text

__all__ = [
    "BUNDLED_DEFAULT",
    "SRT_KEYS",
    "AuditSettings",
    "FilesystemSettings",
    "LoadedSettings",
    "NetworkSettings",
    "RecordSettings",
    "RetentionSettings",
    "Settings",
    "SettingsError",
    "TlsTerminate",
    "Verdict",
    "find_settings_path",
    "json_schema",
    "load_settings",
]

Origin = Literal["flag", "env", "user", "bundled"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

BUNDLED_DEFAULT = Path(__file__).resolve().parents[2] / "configs" / "default.json"


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


class SettingsError(Exception):
    """A settings file netjail will not run with. str() is one line: file, field, problem and fix."""

    def __init__(self, file: str, field: str, problem: str, fix: str) -> None:
        self.file, self.field = file, field
        self.problem, self.fix = problem.rstrip(". "), fix.rstrip(". ")
        super().__init__(f"{safe_text(file)}: {field}: {self.problem}. Fix: {self.fix}")


class _Problem(ValueError):
    """Raised by validators: `at` extends the field path (a list index or a dict key) below the field."""

    def __init__(self, problem: str, fix: str, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(problem)
        self.problem, self.fix, self.at = problem, fix, at


def _split_sentence(message: str) -> tuple[str, str]:
    """'What is wrong; what to do.' -> (problem, fix). A '; ' inside a quoted value does not split."""
    quote = None
    i = 0
    while i < len(message):
        ch = message[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"" and (i == 0 or not message[i - 1].isalnum()):  # not an apostrophe
            quote = ch
        elif message.startswith("; ", i):
            return message[:i], message[i + 2 :].rstrip(".")
        i += 1
    return message.rstrip("."), "correct the entry as described (docs/domain-rules.md lists the forms)"


# ---------------------------------------------------------------------------------------------------------
# Value types: each validates a JSON value and says what is wrong in words
# ---------------------------------------------------------------------------------------------------------


def _require_str(value: object, example: str) -> str:
    if not isinstance(value, str):
        raise _Problem(
            f"must be a string, not {_json_type(value)}", f"write it in double quotes, e.g. {example}"
        )
    return value


def _pattern_validator(*, allow_any: bool, allow_port: bool = True) -> Any:
    def validate(value: object) -> Pattern:
        if isinstance(value, Pattern):
            return value
        text = _require_str(value, '"example.com"')
        if text.startswith("@"):
            raise _Problem(
                f"{quoted(text)} is a preset, and presets are expanded only in network.allowedDomains",
                "list the hosts here explicitly",
            )
        pattern = parse_pattern(text, allow_any=allow_any)
        if pattern.port is not None and not allow_port:
            raise _Problem(f"{quoted(text)} has a port, which this list does not take", "remove the ':port'")
        return pattern

    return validate


_PATTERN_SCHEMA = WithJsonSchema(
    {"type": "string", "description": 'Host, "*.domain" wildcard or IP literal, with an optional ":port".'}
)
_SERIALIZE_PATTERN = PlainSerializer(lambda p: p.source, return_type=str)
AllowPattern = Annotated[
    Pattern, PlainValidator(_pattern_validator(allow_any=False)), _SERIALIZE_PATTERN, _PATTERN_SCHEMA
]
DenyPattern = Annotated[
    Pattern, PlainValidator(_pattern_validator(allow_any=True)), _SERIALIZE_PATTERN, _PATTERN_SCHEMA
]
# srt's plain domain pattern, without a port: excludeDomains, injectHosts, mitmProxy.domains.
HostPattern = Annotated[
    Pattern,
    PlainValidator(_pattern_validator(allow_any=False, allow_port=False)),
    _SERIALIZE_PATTERN,
    WithJsonSchema({"type": "string", "description": 'Host, "*.domain" wildcard or IP literal (no port).'}),
]


def _unmap(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _validate_ip(value: object) -> IPAddress:
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    text = _require_str(value, '"192.0.2.10"')
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        addr = None
    if addr is None or "%" in text:
        raise _Problem(
            f"{quoted(text)} is not an IP address",
            'write an IPv4 address such as "192.0.2.10" or an IPv6 address such as "2001:db8::10"',
        )
    return _unmap(addr)


def _validate_network(value: object) -> IPNetwork:
    """srt's address range: an IP literal or CIDR, unbracketed; IPv4-mapped IPv6 means its IPv4 range."""
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    text = _require_str(value, '"10.0.0.0/8"')
    fix = 'write an address or CIDR range such as "10.0.0.0/8", "192.0.2.10" or "fc00::/7" (IPv6 unbracketed)'
    address, slash, prefix = text.partition("/")
    address = address.split("%", 1)[0]  # srt drops an IPv6 zone id here
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        raise _Problem(f"{quoted(text)} is not an IP address or CIDR range", fix) from None
    width = addr.max_prefixlen
    if slash and not (re.fullmatch(r"\d{1,3}", prefix) and int(prefix) <= width):
        raise _Problem(f"{quoted(text)} has an invalid prefix length (0 to {width})", fix)
    bits = int(prefix) if slash else width
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        if bits < 96:
            raise _Problem(
                f"{quoted(text)} spans more than the IPv4-mapped block",
                "list IPv4 and IPv6 ranges separately",
            )
        return ipaddress.IPv4Network((addr.ipv4_mapped, bits - 96), strict=False)
    return ipaddress.ip_network((addr, bits), strict=False)


IPAddr = Annotated[
    IPAddress,
    PlainValidator(_validate_ip),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "IPv4 or IPv6 address."}),
]
IPNet = Annotated[
    IPNetwork,
    PlainValidator(_validate_network),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "IP address or CIDR range (IPv6 unbracketed)."}),
]


def _check_path(value: str) -> str:
    if not value:
        raise _Problem("the path is empty", 'write a path such as "~/.ssh" or "." (the working directory)')
    for ch, name in (("\x00", "a NUL character"), ("\n", "a newline"), ("\r", "a carriage return")):
        if ch in value:
            raise _Problem(
                f"the path {quoted(value)} contains {name}", "remove it; no real path contains one"
            )
    return value


def _check_absolute(value: str) -> str:
    if not os.path.isabs(_check_path(value)):
        raise _Problem(
            f"{quoted(value)} is not an absolute path", "give the binary's full path, e.g. /usr/bin/bwrap"
        )
    return value


def _to_path(value: object) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_check_path(_require_str(value, '"~/.config/app/token"'))).expanduser()


def _validate_ca_file(value: object) -> Path:
    """A PEM file holding at least one certificate (stricter than srt, which skips unusable files)."""
    path = _to_path(value).absolute()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Problem(
            f"cannot read the CA certificate file {quoted(str(path))} ({exc.strerror or exc})",
            "give the path of an existing PEM file, or remove the entry",
        ) from None
    if not _has_pem_certificate(data):
        raise _Problem(
            f"{quoted(str(path))} holds no PEM certificate",
            "point at a file with '-----BEGIN CERTIFICATE-----' blocks (convert DER with 'openssl x509 -inform der')",
        )
    return path


_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.DOTALL)


def _has_pem_certificate(data: bytes) -> bool:
    """True when some CERTIFICATE block parses; the rest of the file (a key, say) is never used."""
    from cryptography import x509  # only paid for when a CA file is listed

    for block in _PEM_BLOCK.finditer(data):
        # A system bundle may hold a legacy certificate that cryptography warns about.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                x509.load_pem_x509_certificate(block.group(0))
            except ValueError:
                continue
        return True
    return False


_PATH_SCHEMA = WithJsonSchema({"type": "string", "minLength": 1})
FsPath = Annotated[str, PlainValidator(lambda v: _check_path(_require_str(v, '"~/.ssh"'))), _PATH_SCHEMA]
AbsPath = Annotated[
    str, PlainValidator(lambda v: _check_absolute(_require_str(v, '"/usr/bin/bwrap"'))), _PATH_SCHEMA
]
FilePath = Annotated[Path, PlainValidator(_to_path), PlainSerializer(str, return_type=str), _PATH_SCHEMA]
CaFile = Annotated[
    Path, PlainValidator(_validate_ca_file), PlainSerializer(str, return_type=str), _PATH_SCHEMA
]
NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
_HEX = "[0-9a-fA-F]"
_GUID = rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$"
EnvName = Annotated[str, StringConstraints(pattern=_ENV_NAME)]
Guid = Annotated[str, StringConstraints(pattern=_GUID)]  # zod's uuid()
HeaderName = Annotated[str, StringConstraints(pattern=_HEADER_NAME, to_lower=True)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    return "an object"


# ---------------------------------------------------------------------------------------------------------
# Models (field order follows srt's schema; netjail's additions come last in each model)
# ---------------------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


def _refuse_when_true(problem: str, fix: str) -> Any:
    def check(value: bool) -> bool:
        if value:
            raise _Problem(problem, fix)
        return value

    return check


def _refuse_present(problem: str, fix: str) -> Any:
    def check(value: Any) -> Any:
        raise _Problem(problem, fix)

    return check


_EXTERNAL_PROXY = (
    "netjail's own proxy must see every connection so it can judge and record it; "
    "an external proxy would take over that role"
)


class MitmProxyConfig(_Model):
    """srt: route some domains through an upstream proxy on a Unix socket. Refused."""

    socket_path: NonEmptyStr
    domains: Annotated[list[HostPattern], Field(min_length=1)]


class ParentProxyConfig(_Model):
    """srt: upstream proxy for all outbound connections. Refused unless empty."""

    http: NonEmptyStr | None = None
    https: NonEmptyStr | None = None
    no_proxy: str | None = None


class TlsTerminate(_Model):
    ca_cert_path: NonEmptyStr | None = None  # warned: netjail always mints a per-run CA
    ca_key_path: NonEmptyStr | None = None
    exclude_domains: list[HostPattern] = []
    extra_ca_cert_paths: list[CaFile] = []

    @model_validator(mode="after")
    def _ca_pair(self) -> TlsTerminate:
        if (self.ca_cert_path is None) != (self.ca_key_path is None):
            missing = "caKeyPath" if self.ca_key_path is None else "caCertPath"
            raise _Problem(
                "caCertPath and caKeyPath must be given together (as in srt)", f"add {missing} or remove both"
            )
        return self


MachServiceName = Annotated[
    str,
    PlainValidator(lambda v: _check_mach(_require_str(v, '"com.example.*"'))),
    WithJsonSchema({"type": "string"}),
]


def _check_mach(value: str) -> str:
    if "*" in value.removesuffix("*"):
        raise _Problem(
            f"{quoted(value)} uses '*' other than at the end",
            'write a single trailing "*", e.g. "com.example.*" (or "*" for all services)',
        )
    return value


class NetworkSettings(_Model):
    allowed_domains: list[AllowPattern]
    denied_domains: list[DenyPattern]
    denied_domain_reasons: dict[str, NonEmptyStr] = {}
    strict_allowlist: bool = True  # netjail never asks: anything not allowed is denied
    denied_resolved_addresses: list[IPNet] = []
    allow_unix_sockets: list[str] = []
    allow_all_unix_sockets: bool = False
    allow_local_binding: bool = False
    allow_mach_lookup: list[MachServiceName] = []
    http_proxy_port: Port | None = None
    socks_proxy_port: Port | None = None
    mitm_proxy: MitmProxyConfig | None = None
    filter_request: Any = Field(default=None, json_schema_extra={"not": {}})
    tls_terminate: TlsTerminate = Field(default_factory=TlsTerminate)
    parent_proxy: ParentProxyConfig | None = None
    # netjail additions
    limits: NetworkLimits = Field(default_factory=NetworkLimits)
    hosts: dict[str, IPAddr] = Field(
        default={},
        description="Pin names to addresses (like curl --resolve); a pinned name may point anywhere.",
    )
    resolver: str | None = Field(
        default=None, description='Upstream DNS server for netjail itself: "IP", "IP:port" or "[IPv6]:port".'
    )
    mode: Literal["enforce", "audit"] = Field(
        default="enforce",
        description='"audit" records what would be denied and lets it through (learn mode).',
    )
    capture: Literal["auto", "transparent", "proxy-variables"] = Field(
        default="auto",
        description=(
            '"auto": capture every TCP connection and DNS query transparently where the kernel allows it, else '
            'fall back to proxy variables with a warning; "transparent": refuse to run without capture; '
            '"proxy-variables": only clients that honour HTTP_PROXY reach the network.'
        ),
    )

    _refuse_http_port = field_validator("http_proxy_port", mode="before")(
        _refuse_present(f"an external HTTP proxy is not supported: {_EXTERNAL_PROXY}", "remove httpProxyPort")
    )
    _refuse_socks_port = field_validator("socks_proxy_port", mode="before")(
        _refuse_present(
            f"an external SOCKS proxy is not supported: {_EXTERNAL_PROXY}", "remove socksProxyPort"
        )
    )
    _refuse_mitm = field_validator("mitm_proxy", mode="before")(
        _refuse_present(
            f"routing domains to another proxy is not supported: {_EXTERNAL_PROXY}",
            "remove mitmProxy; netjail terminates TLS itself and records every request",
        )
    )
    _refuse_filter = field_validator("filter_request", mode="before")(
        _refuse_present(
            "filterRequest is a JavaScript callback for srt's library API and cannot be given in a settings file",
            "remove filterRequest",
        )
    )

    @field_validator("parent_proxy", mode="before")
    @classmethod
    def _refuse_parent(cls, value: Any) -> Any:
        named = [key for key in ("http", "https") if isinstance(value, dict) and value.get(key) is not None]
        if named:
            raise _Problem(
                "chaining to a parent proxy is not supported: netjail dials upstream itself, and ignoring the "
                "setting would send traffic around the proxy you named",
                "remove parentProxy, or run netjail where direct connections are allowed",
                at=(named[0],),
            )
        return value

    @field_validator("denied_domain_reasons")
    @classmethod
    def _reasons_name_entries(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        denied = info.data.get("denied_domains")
        if denied is None:  # deniedDomains itself is invalid: that error is reported instead
            return value
        entries = [p.source for p in denied]
        for key, reason in value.items():
            if key not in entries:
                close = difflib.get_close_matches(key, entries, n=1)
                hint = f" (did you mean {quoted(close[0])}?)" if close else ""
                raise _Problem(
                    f"{quoted(key)} is not an entry of deniedDomains, so this reason could never be shown",
                    f"use the exact deniedDomains entry as the key{hint}, or add {quoted(key)} to deniedDomains",
                    at=(key,),
                )
            if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in reason):
                raise _Problem(
                    "the reason contains a control or invisible character (newline, escape, bidi mark)",
                    "write the reason as one plain line",
                    at=(key,),
                )
        return value

    @field_validator("hosts")
    @classmethod
    def _normalise_hosts(cls, value: dict[str, IPAddress]) -> dict[str, IPAddress]:
        pinned: dict[str, IPAddress] = {}
        for key, addr in value.items():
            try:
                host = normalize_host(key)
            except PatternError as exc:
                problem, fix = _split_sentence(str(exc))
                raise _Problem(problem, fix, at=(key,)) from None
            if host.ip is not None:
                raise _Problem(
                    f"{quoted(key)} is an IP address; hosts pins names to addresses",
                    'use a host name as the key, e.g. "registry.internal.test"',
                    at=(key,),
                )
            if host.name in pinned:
                raise _Problem(
                    f"{quoted(key)} names {quoted(host.name)} a second time", "keep one entry", at=(key,)
                )
            pinned[host.name] = addr
        return pinned

    @field_validator("resolver")
    @classmethod
    def _check_resolver(cls, value: str) -> str:
        parse_resolver(value)
        return value

    @property
    def resolver_address(self) -> tuple[str, int] | None:
        """(ip, port) of the upstream DNS server netjail uses; None = the system resolver."""
        return None if self.resolver is None else parse_resolver(self.resolver)


def parse_resolver(text: str) -> tuple[str, int]:
    """ "IP", "IP:port" or "[IPv6]:port" -> (ip, port); port 53 by default. Raises _Problem."""
    fix = 'write an IP address with an optional port, e.g. "192.0.2.53", "192.0.2.53:5353" or "[2001:db8::53]:53"'
    host, port_text = text, ""
    if text.startswith("[") and "]" in text:
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise _Problem(f"{quoted(text)} is not a resolver address", fix)
        port_text = rest[1:] if rest else ""
        if not port_text and rest:
            raise _Problem(f"{quoted(text)} has an empty port", fix)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        addr = None
    if addr is None or "%" in host or (text.startswith("[") and addr.version != 6):
        raise _Problem(
            f"{quoted(text)} is not an IP address; netjail must not need DNS to reach its DNS server", fix
        )
    if port_text and not (re.fullmatch(r"[1-9][0-9]{0,4}", port_text) and int(port_text) <= 65535):
        raise _Problem(f"{quoted(text)} has an invalid port (1 to 65535)", fix)
    return str(_unmap(addr)), int(port_text) if port_text else 53


def _inert_deny_glob(value: str) -> _Problem | None:
    """srt's rule: a rooted deny glob ending in '/' matches nothing, so it would deny nothing (fail open)."""
    if not value.endswith("/") or not any(c in value for c in "*?[]"):
        return None
    if not value.startswith(("/", "~")):
        return None
    trimmed = value.rstrip("/")
    return _Problem(
        f"the deny glob {quoted(value)} ends in '/', so it can match no path and would deny nothing",
        f'write "{trimmed}", or add a "**" segment to match at any depth',
    )


class FilesystemSettings(_Model):
    disabled: bool = False
    deny_read: list[FsPath]
    allow_read: list[FsPath] = []
    allow_write: list[FsPath]
    deny_write: list[FsPath]
    allow_git_config: bool = False

    _refuse_disabled = field_validator("disabled")(
        _refuse_when_true(
            "netjail always enforces the filesystem rules (and its mandatory write protections)",
            "remove disabled or set it to false; list what the command may write in allowWrite",
        )
    )

    @field_validator("deny_read", "deny_write")
    @classmethod
    def _no_inert_globs(cls, value: list[str]) -> list[str]:
        for index, entry in enumerate(value):
            if (problem := _inert_deny_glob(entry)) is not None:
                problem.at = (index,)
                raise problem
        return value


CredentialMode = Literal["deny", "mask"]


class CredentialFile(_Model):
    path: FsPath
    mode: CredentialMode
    extract: str | None = None
    on_extract_no_match: Literal["warn", "deny", "error"] | None = None
    decode: Literal["jwt"] | None = None
    mask_claims: list[NonEmptyStr] | None = None
    mask_duplicates: bool | None = None
    inject_hosts: list[HostPattern] | None = None

    @model_validator(mode="after")
    def _srt_rules(self) -> CredentialFile:
        if self.mode == "mask" and self.path.endswith("/"):
            raise _Problem(
                'mode "mask" applies to a single file, not a directory',
                'use mode "deny" for a directory, or name the credential file inside it',
                at=("path",),
            )
        if (problem := _inert_deny_glob(self.path)) is not None:
            problem.at = ("path",)
            raise problem
        return self


class CredentialEnvVar(_Model):
    name: EnvName
    mode: CredentialMode
    extract: str | None = None
    on_extract_no_match: Literal["warn", "deny", "error"] | None = None
    decode: Literal["jwt"] | None = None
    mask_claims: list[NonEmptyStr] | None = None
    inject_hosts: list[HostPattern] | None = None


class AwsPair(_Model):
    access_key_id_var: EnvName
    secret_access_key_var: EnvName
    session_token_var: EnvName | None = None


Sigv4Policy = Literal["deny", "passthrough"]


class Sigv4(_Model):
    streaming: Sigv4Policy | None = None
    presigned: Sigv4Policy | None = None
    sigv4a: Sigv4Policy | None = Field(default=None, alias="sigv4a")  # to_camel would say "sigv4A"


class CredentialsSettings(_Model):
    """srt's credential sources. netjail denies them all: masked files become unreadable, masked
    variables are withheld (netjail passes only envPassthrough variables into the jail anyway)."""

    files: list[CredentialFile] = []
    env_vars: list[CredentialEnvVar] = []
    allow_plaintext_inject: bool = False
    aws_pairs: list[AwsPair] = []
    sigv4: Sigv4 | None = None


class RipgrepConfig(_Model):
    command: str
    args: list[str] | None = None
    argv0: str | None = None


class SeccompConfig(_Model):
    apply_path: str | None = None
    argv0: str | None = None


class SrtWinConfig(_Model):
    path: NonEmptyStr


def _check_port_range(value: tuple[int, int]) -> tuple[int, int]:
    low, high = value
    if not (low <= high and high - low <= 64):
        raise _Problem(
            "low must be at most high and the range at most 64 ports wide (as in srt)", "fix the range"
        )
    return value


class WindowsConfig(_Model):
    sandbox_user: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = None
    sublayer_guid: Guid | None = None
    wfp_sublayer_guid: Guid | None = None
    proxy_port_range: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(le=65535)]] | None = None
    srt_win: SrtWinConfig | None = None

    _port_range = field_validator("proxy_port_range")(lambda v: v if v is None else _check_port_range(v))


class GitConfig(_Model):
    safe_directories: list[str] = []


class AuditSettings(_Model):
    """netjail addition: secrets whose values the audit report looks for in recorded traffic."""

    secret_env: list[EnvName] = []
    secret_files: list[FilePath] = []


class RecordSettings(_Model):
    """netjail addition: what the recorder keeps in flows.mitm."""

    body_cap: Annotated[int, Field(ge=0)] = Field(
        default=1_048_576, description="Bytes kept of each request and response body (0 = none)."
    )
    redact_headers: list[HeaderName] = Field(
        default=["authorization", "cookie", "proxy-authorization"],
        description="Header names whose values are replaced before a flow is written (case-insensitive).",
    )


class RetentionSettings(_Model):
    """netjail addition: how long run directories are kept. Applied by `netjail runs --prune`."""

    max_age_days: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Remove runs that started more than this many days ago."
    )
    max_total_mb: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        alias="maxTotalMB",
        description="Then remove the oldest runs until all runs together take at most this many MB (10^6 bytes).",
    )


class Settings(_Model):
    schema_uri: str | None = Field(default=None, alias="$schema", description="Ignored; for editors.")
    network: NetworkSettings
    filesystem: FilesystemSettings
    credentials: CredentialsSettings = Field(default_factory=CredentialsSettings)
    ignore_violations: dict[str, list[str]] = {}
    enable_weaker_nested_sandbox: bool = False
    enable_weaker_network_isolation: bool = False
    allow_apple_events: bool = False
    ripgrep: RipgrepConfig | None = None
    mandatory_deny_search_depth: Annotated[int, Field(ge=1, le=10)] = 3
    allow_pty: bool = False
    seccomp: SeccompConfig | None = None
    bwrap_path: AbsPath | None = None
    socat_path: AbsPath | None = None
    java_agent_jar_path: AbsPath | None = None
    windows: WindowsConfig | None = None
    git: GitConfig | None = None
    # netjail additions
    env_passthrough: list[EnvName] = Field(
        default=[],
        description="Names of host environment variables passed into the jail (all others are not).",
    )
    audit: AuditSettings = Field(default_factory=AuditSettings)
    record: RecordSettings = Field(default_factory=RecordSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    _refuse_nested = field_validator("enable_weaker_nested_sandbox")(
        _refuse_when_true(
            "netjail has no weaker nested-sandbox mode (srt's drops /proc and namespace isolation)",
            "remove the key or set it to false; run netjail where unprivileged user namespaces work",
        )
    )
    _refuse_weaker_net = field_validator("enable_weaker_network_isolation")(
        _refuse_when_true(
            "netjail has no weaker network isolation mode (srt's opens a macOS trust service to the sandbox)",
            "remove the key or set it to false",
        )
    )
    _refuse_apple_events = field_validator("allow_apple_events")(
        _refuse_when_true(
            "netjail never lets the command launch programs outside the jail (srt's allowAppleEvents does, on macOS)",
            "remove the key or set it to false",
        )
    )

    @model_validator(mode="after")
    def _apply_credentials(self) -> Settings:
        # Credential files are denied reads, whatever their mode (netjail cannot mask): merged into
        # denyRead so every jail backend applies them without knowing about credentials.
        extra = [f.path for f in self.credentials.files if f.path not in self.filesystem.deny_read]
        if extra:
            deny_read = [*self.filesystem.deny_read, *dict.fromkeys(extra)]
            self.filesystem = self.filesystem.model_copy(update={"deny_read": deny_read})
        withheld = {v.name: v.mode for v in self.credentials.env_vars}
        for index, name in enumerate(self.env_passthrough):
            if name in withheld:
                raise _Problem(
                    f"{name} is passed into the jail here but credentials.envVars withholds it (mode {withheld[name]!r})",
                    "remove it from one of the two lists",
                    at=("envPassthrough", index),
                )
        return self


# ---------------------------------------------------------------------------------------------------------
# srt 0.0.78 keys and their verdicts (docs/srt-compat.md is built from this table; a test keeps them equal)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    path: str  # dotted, camelCase, "[]" for array items
    verdict: Literal["honoured", "warned", "refused"]
    why: str


# path | verdict | why  ("[]" = each item of an array; a "see X" line shares X's verdict and reason)
_SRT_TABLE = """
network                                  | honoured | required, as in srt
network.allowedDomains                   | honoured | hosts, *.wildcards, IP literals, optional :port; netjail adds "@preset" entries
network.deniedDomains                    | honoured | checked before allowedDomains; "*" denies everything
network.deniedDomainReasons              | honoured | shown in the denial and the flow record; each key must be a deniedDomains entry
network.strictAllowlist                  | honoured | netjail never asks: a host not allowed is denied, whatever the value
network.deniedResolvedAddresses          | honoured | added to the ranges an allowed name may not resolve to
network.allowUnixSockets                 | warned   | ignored on Linux (as by srt), where Unix sockets stay blocked; honoured on macOS: these socket paths may be bound and connected
network.allowAllUnixSockets              | honoured | true lets the command create Unix sockets (on macOS: bind and connect any path but the system resolver's)
network.allowLocalBinding                | honoured | true lets the command listen on its own loopback (on macOS, which has none of its own: the host's)
network.allowMachLookup                  | warned   | ignored on Linux, which has no XPC services; honoured on macOS, except DNS and other egress services unless named exactly
network.httpProxyPort                    | refused  | an external proxy would replace netjail's: nothing would be judged or recorded
network.socksProxyPort                   | refused  | an external proxy would replace netjail's: nothing would be judged or recorded
network.mitmProxy                        | refused  | traffic handed to another proxy would leave netjail's policy and recorder
network.mitmProxy.socketPath             | refused  | see network.mitmProxy
network.mitmProxy.domains                | refused  | see network.mitmProxy
network.filterRequest                    | refused  | a JavaScript callback of srt's library: no JSON value is valid (srt refuses it too)
network.tlsTerminate                     | honoured | netjail always terminates TLS (to judge Host and SNI, and record); this block tunes it
network.tlsTerminate.caCertPath          | warned   | ignored: netjail mints a fresh CA per run, whose key never leaves the run
network.tlsTerminate.caKeyPath           | warned   | ignored: netjail mints a fresh CA per run, whose key never leaves the run
network.tlsTerminate.excludeDomains      | honoured | tunnelled without termination, still judged by name and recorded
network.tlsTerminate.extraCaCertPaths    | honoured | added to the jail's trust bundle; each file must exist and hold a certificate
network.parentProxy                      | refused  | netjail dials upstream itself; ignoring it would route around your proxy ({} is accepted)
network.parentProxy.http                 | refused  | see network.parentProxy
network.parentProxy.https                | refused  | see network.parentProxy
network.parentProxy.noProxy              | honoured | with no parent proxy every connection is direct, which is what it asks
filesystem                               | honoured | required, as in srt
filesystem.disabled                      | refused  | true would drop every filesystem rule; false is accepted
filesystem.denyRead                      | honoured | hidden inside the jail
filesystem.allowRead                     | honoured | readable again inside a denyRead region
filesystem.allowWrite                    | honoured | the only writable paths (besides the jail's private /tmp)
filesystem.denyWrite                     | honoured | read-only even inside allowWrite
filesystem.allowGitConfig                | honoured | true leaves .git/config writable (.git/hooks stays protected)
credentials                              | honoured | every declared credential is kept from the command
credentials.files                        | honoured | each path is added to filesystem.denyRead
credentials.files[].path                 | honoured | added to filesystem.denyRead
credentials.files[].mode                 | honoured | "deny" as in srt; "mask" denies too, with a warning (as srt does on macOS)
credentials.files[].extract              | warned   | ignored: masking is not supported, masked files are denied instead
credentials.files[].onExtractNoMatch     | warned   | see credentials.files[].extract
credentials.files[].decode               | warned   | see credentials.files[].extract
credentials.files[].maskClaims           | warned   | see credentials.files[].extract
credentials.files[].maskDuplicates       | warned   | see credentials.files[].extract
credentials.files[].injectHosts          | warned   | see credentials.files[].extract
credentials.envVars                      | honoured | each variable is kept out of the jail
credentials.envVars[].name               | honoured | never passed into the jail; refused if envPassthrough lists it too
credentials.envVars[].mode               | honoured | "deny" as in srt; "mask" withholds the variable too, with a warning
credentials.envVars[].extract            | warned   | ignored: masking is not supported, masked variables are withheld instead
credentials.envVars[].onExtractNoMatch   | warned   | see credentials.envVars[].extract
credentials.envVars[].decode             | warned   | see credentials.envVars[].extract
credentials.envVars[].maskClaims         | warned   | see credentials.envVars[].extract
credentials.envVars[].injectHosts        | warned   | see credentials.envVars[].extract
credentials.allowPlaintextInject         | warned   | ignored: netjail injects no credential, in plaintext or otherwise
credentials.awsPairs                     | warned   | ignored: SigV4 re-signing needs masking; the variables are withheld instead
credentials.awsPairs[].accessKeyIdVar    | warned   | see credentials.awsPairs
credentials.awsPairs[].secretAccessKeyVar | warned  | see credentials.awsPairs
credentials.awsPairs[].sessionTokenVar   | warned   | see credentials.awsPairs
credentials.sigv4                        | warned   | ignored: SigV4 re-signing needs masking; the variables are withheld instead
credentials.sigv4.streaming              | warned   | see credentials.sigv4
credentials.sigv4.presigned              | warned   | see credentials.sigv4
credentials.sigv4.sigv4a                 | warned   | see credentials.sigv4
ignoreViolations                         | warned   | ignored: netjail records every denial in the run's flow log; nothing is suppressed
enableWeakerNestedSandbox                | refused  | true asks for a weaker jail, which netjail does not offer; false is accepted
enableWeakerNetworkIsolation             | refused  | true asks for weaker network isolation, which netjail does not offer; false is accepted
allowAppleEvents                         | refused  | true would let the command launch programs outside the jail; false is accepted
ripgrep                                  | warned   | ignored: netjail finds the mandatory-deny files itself
ripgrep.command                          | warned   | see ripgrep
ripgrep.args                             | warned   | see ripgrep
ripgrep.argv0                            | warned   | see ripgrep
mandatoryDenySearchDepth                 | honoured | how deep to look for dangerous files under writable paths (1-10)
allowPty                                 | honoured | true gives the command a pseudo-terminal (macOS-only in srt)
seccomp                                  | warned   | ignored: netjail does not use srt's apply-seccomp helper
seccomp.applyPath                        | warned   | see seccomp
seccomp.argv0                            | warned   | see seccomp
bwrapPath                                | honoured | the bubblewrap binary netjail runs instead of the one on PATH
socatPath                                | warned   | ignored: netjail does not bridge its proxy with socat
javaAgentJarPath                         | warned   | ignored: netjail points JVMs at its proxy with JAVA_TOOL_OPTIONS properties
windows                                  | warned   | ignored: Windows only; netjail runs on Linux and macOS
windows.sandboxUser                      | warned   | see windows
windows.sublayerGuid                     | warned   | see windows
windows.wfpSublayerGuid                  | warned   | see windows
windows.proxyPortRange                   | warned   | see windows
windows.srtWin                           | warned   | see windows
windows.srtWin.path                      | warned   | see windows
git                                      | warned   | ignored: the jail keeps your own uid, so git's ownership check passes anyway
git.safeDirectories                      | warned   | see git
"""

# netjail's own keys (not in srt): key | meaning
_NETJAIL_TABLE = """
$schema                  | ignored; lets an editor find docs/settings.schema.json
network.allowedDomains "@pip", "@npm" | presets: the index/registry hosts of this machine's pip or npm configuration
network.hosts            | pin a name to an address, like curl --resolve; the name may point anywhere, private ranges included
network.resolver         | upstream DNS server of netjail itself: "IP", "IP:port" or "[IPv6]:port"; default the system resolver
network.mode             | "enforce" (default) or "audit": record what would be denied but let it through (learn mode)
network.capture          | "auto" (default), "transparent" or "proxy-variables": how traffic that ignores proxy variables is handled
network.limits           | sizes past which a request is refused before it is parsed (431, 414, 400); defaults in docs/security.md
envPassthrough           | host environment variables passed into the jail; no other variable is
audit.secretEnv          | environment variables whose values the audit report looks for in recorded traffic
audit.secretFiles        | files whose contents the audit report looks for in recorded traffic
record.bodyCap           | bytes kept of each body in flows.mitm (default 1 MiB; 0 = none)
record.redactHeaders     | headers whose values are replaced before a flow is written
retention.maxAgeDays     | netjail runs --prune removes runs older than this many days
retention.maxTotalMB     | netjail runs --prune then removes the oldest runs until the rest take at most this many MB
"""


def _rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split(" | ")] for line in table.strip().splitlines()]


SRT_KEYS: tuple[Verdict, ...] = tuple(Verdict(p, v, why) for p, v, why in _rows(_SRT_TABLE))  # type: ignore[arg-type]
NETJAIL_KEYS: tuple[tuple[str, str], ...] = tuple((k, m) for k, m in _rows(_NETJAIL_TABLE))


def _field_for_alias(model: type[BaseModel], alias: str) -> tuple[str, Any] | None:
    for name, info in model.model_fields.items():
        if (info.alias or name) == alias:
            return name, info.annotation
    return None


def _values_at(root: BaseModel, path: str) -> list[tuple[str, Any]]:
    """Concrete (path, value) pairs for a table path such as "credentials.files[].extract"."""
    found: list[tuple[str, Any]] = [("", root)]
    for segment in path.split("."):
        many, alias = segment.endswith("[]"), segment.removesuffix("[]")
        step: list[tuple[str, Any]] = []
        for where, obj in found:
            hit = _field_for_alias(type(obj), alias) if isinstance(obj, BaseModel) else None
            if hit is None:
                continue
            here = f"{where}.{alias}" if where else alias
            value = getattr(obj, hit[0])
            step += [(f"{here}[{i}]", v) for i, v in enumerate(value or [])] if many else [(here, value)]
        found = step
    return found


def _is_set(value: Any) -> bool:
    if isinstance(value, BaseModel):
        return any(_is_set(getattr(value, name)) for name in type(value).model_fields)
    return value not in (None, False, [], {}, "")


def _warning_roots() -> list[Verdict]:
    # One warning per subtree (ripgrep, not ripgrep.command as well); credential entries are handled apart.
    warned = [
        v
        for v in SRT_KEYS
        if v.verdict == "warned" and not v.path.startswith(("credentials.files[]", "credentials.envVars[]"))
    ]
    return [v for v in warned if not any(v.path.startswith((p.path + ".", p.path + "[]")) for p in warned)]


def collect_warnings(settings: Settings) -> list[str]:
    """One line per srt key that is present with an effect and that netjail ignores."""
    warnings: list[str] = []
    for verdict in _warning_roots():
        for where, value in _values_at(settings, verdict.path):
            if _is_set(value):
                warnings.append(f"{where}: {verdict.why}")
    for kind, modes, instead in (
        ("files", [f.mode for f in settings.credentials.files], "the file is made unreadable"),
        ("envVars", [v.mode for v in settings.credentials.env_vars], "the variable is withheld"),
    ):
        for index, mode in enumerate(modes):
            if mode == "mask":
                where = f"credentials.{kind}[{index}]"
                warnings.append(f'{where}: mode "mask" is not supported; {instead} inside the jail instead')
    return warnings


# ---------------------------------------------------------------------------------------------------------
# ValidationError -> SettingsError
# ---------------------------------------------------------------------------------------------------------

_EXPECTED = {
    "string_type": ("a string", 'write it in double quotes, e.g. "example"'),
    "list_type": ("an array", 'write a JSON array, e.g. [] or ["example"]'),
    "tuple_type": ("an array", "write a JSON array"),
    "bool_type": ("true or false", "write true or false, without quotes"),
    "int_type": ("a whole number", "write a whole number, without quotes"),
    "int_from_float": ("a whole number", "write a whole number, without a fraction"),
    "dict_type": ("an object", "write a JSON object, e.g. {}"),
    "model_type": ("an object", "write a JSON object, e.g. {}"),
    "model_attributes_type": ("an object", "write a JSON object, e.g. {}"),
}


def _render_path(loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None]:
    """pydantic's loc -> a JSON path (network.allowedDomains[2], network.hosts["x"]) and the model that
    holds its last key (for "did you mean")."""
    out = ""
    tp: Any = Settings
    parent: type[BaseModel] | None = Settings
    for segment in loc:
        tp = _unwrap(tp)
        if isinstance(segment, int):
            out += f"[{segment}]"
            args = get_args(tp)
            tp = args[0] if args else None
            continue
        if segment == "[key]":  # pydantic's marker for "the key itself": not part of the JSON path
            continue
        if get_origin(tp) is dict:
            out += f"[{json.dumps(segment)}]"
            tp = get_args(tp)[1]
            continue
        hit = None
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            parent, hit = tp, _field_for_alias(tp, segment)
        ident = re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_]*", segment) is not None
        out += (f".{segment}" if out else segment) if ident else f"[{json.dumps(segment)}]"
        tp = hit[1] if hit else None
    return out or "(file)", parent


def _unwrap(tp: Any) -> Any:
    """Strip Annotated[...] and `X | None` down to the type that shapes the JSON."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        args = get_args(tp)
        if args and type(None) in args and len(args) == 2:
            tp = next(a for a in args if a is not type(None))
            continue
        return tp


def _known_keys(model: type[BaseModel] | None) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()] if model else []


def _describe(error: Any, parent: type[BaseModel] | None) -> tuple[str, str]:
    """A pydantic error in words: (problem, fix)."""
    kind, loc, value = error["type"], error["loc"], error.get("input")
    ctx = error.get("ctx") or {}
    name = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        known = _known_keys(parent)
        folded = {re.sub(r"[_\-]", "", k).lower(): k for k in known}  # allowed_domains -> allowedDomains
        guess = folded.get(re.sub(r"[_\-]", "", name).lower())
        guess = guess or next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.75)), None)
        fix = (
            f"did you mean {json.dumps(guess)}?" if guess else "remove it (docs/srt-compat.md lists the keys)"
        )
        return f"unknown key {quoted(name)} (known to neither srt nor netjail)", fix
    if kind == "missing":
        hit = _field_for_alias(parent, name) if parent else None
        shape = _unwrap(hit[1]) if hit else None
        is_model = isinstance(shape, type) and issubclass(shape, BaseModel)
        example = ": []" if get_origin(shape) is list else ": {}" if is_model else ""
        return "this key is required (srt requires it too)", f'add "{name}"{example}'
    if kind in _EXPECTED:
        noun, fix = _EXPECTED[kind]
        return f"must be {noun}, not {_json_type(value)}", fix
    if kind == "literal_error":
        return f"{quoted(value)} is not allowed here", f"use {ctx['expected']}"
    pattern = ctx.get("pattern", "")
    if kind == "string_pattern_mismatch" and pattern == _ENV_NAME:
        return (
            f"{quoted(value)} is not an environment variable name",
            "use letters, digits and '_', not a leading digit",
        )
    if kind == "string_pattern_mismatch" and pattern == _HEADER_NAME:
        return f"{quoted(value)} is not an HTTP header name", "write the bare header name, e.g. authorization"
    if kind == "string_pattern_mismatch" and pattern == _GUID:
        return (
            f"{quoted(value)} is not a GUID",
            "write it as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)",
        )
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty", "give a value, or remove the key"
    msg = error["msg"]
    if kind.startswith(("greater_than", "less_than", "too_", "string_too_")):
        return (
            f"{quoted(value)} is out of range: {msg[:1].lower()}{msg[1:]}",
            "use a value in the allowed range",
        )
    return msg, "see docs/srt-compat.md and docs/settings.schema.json"


def _to_settings_error(file: str, exc: ValidationError, remap: dict[int, int]) -> SettingsError:
    errors = exc.errors(include_url=False)
    # A misspelt key usually also makes a required key "missing": the unknown key is the useful report.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(first["loc"])
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, _Problem):
        loc += cause.at
        problem, fix = cause.problem, cause.fix
    elif isinstance(cause, PatternError):
        problem, fix = _split_sentence(str(cause))
    else:
        problem = fix = ""
    if loc[:2] == ("network", "allowedDomains") and len(loc) > 2 and isinstance(loc[2], int):
        loc = (*loc[:2], remap.get(loc[2], loc[2]), *loc[3:])  # index in the file, before preset expansion
    path, parent = _render_path(loc)
    if not problem:
        problem, fix = _describe(first, parent)
    return SettingsError(file, path, problem, fix)


# ---------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    path: Path  # the file actually used
    origin: Origin
    warnings: tuple[str, ...] = ()  # one line each, for srt keys present in the file that netjail ignores
    expansions: dict[str, list[str]] = field(default_factory=dict)  # "@pip" -> hosts it expanded to

    def effective_json(self) -> str:
        """The settings in force (presets expanded, credential files in denyRead), by alias, indented."""
        return self.settings.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"


def find_settings_path(flag: Path | None, environ: Mapping[str, str] = os.environ) -> tuple[Path, Origin]:
    """-s FILE, else $NETJAIL_SETTINGS, else the user's file if it is there, else the bundled default."""
    if flag is not None:
        return flag, "flag"
    if explicit := environ.get("NETJAIL_SETTINGS"):
        return Path(explicit), "env"
    config_home = environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config_home):  # the XDG spec says to ignore a relative value
        config_home = str(Path(environ.get("HOME") or Path.home()) / ".config")
    user = Path(config_home) / "netjail" / "settings.json"
    # lexists: a file that is there but broken (dangling link, unreadable) is an error, never a silent
    # fall-back to different rules.
    if os.path.lexists(user):
        return user, "user"
    return BUNDLED_DEFAULT, "bundled"


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Problem(f"the key {quoted(key)} appears twice in one object", "keep only one of them")
        seen[key] = value
    return seen


def _reject_constant(name: str) -> Any:
    raise _Problem(f"{name} is not valid JSON", "write a number or remove the value")


def _first_null(value: Any, loc: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where the document holds a JSON null. srt (zod) takes null nowhere, and here it would silently
    mean "the default"."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = (*loc, key) if item is None else _first_null(item, (*loc, key))
        if found is not None:
            return found
    return None


def _parse_json(file: str, text: str) -> Any:
    if not text.strip():
        raise SettingsError(
            file, "(file)", "the file is empty", 'write a JSON object with "network" and "filesystem"'
        )
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            file,
            "(file)",
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            "correct the JSON syntax (double-quoted strings, no comments, no trailing commas)",
        ) from None
    except _Problem as exc:
        raise SettingsError(file, "(file)", exc.problem, exc.fix) from None


def _preset_host_problem(host: str) -> str | None:
    try:
        kind = parse_pattern(host).kind
    except PatternError as exc:
        return str(exc)
    return None if kind in ("exact", "ip") else "a preset may name only exact hosts and IP addresses"


def _expand_allowed(
    file: str, data: dict[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, list[str]], dict[int, int]]:
    """Replace "@preset" entries of network.allowedDomains by their hosts, before validation.

    Returns the new data, the expansions and a map from expanded index to the index in the file.
    """
    network = data.get("network")
    if not isinstance(network, dict):
        return data, {}, {}
    entries = network.get("allowedDomains")
    if not isinstance(entries, list) or not any(isinstance(e, str) and e.startswith("@") for e in entries):
        return data, {}, {}
    expanded: list[Any] = []
    remap: dict[int, int] = {}
    expansions: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        field_path = f"network.allowedDomains[{index}]"
        if not (isinstance(entry, str) and entry.startswith("@")):
            remap[len(expanded)] = index
            expanded.append(entry)
            continue
        if entry not in expansions:
            try:
                hosts = expand_preset(entry, environ)
            except PresetError as exc:
                problem, fix = _split_sentence(str(exc))
                raise SettingsError(file, field_path, problem, fix) from None
            for host in hosts:
                if (why := _preset_host_problem(host)) is not None:
                    raise SettingsError(
                        file,
                        field_path,
                        f"preset {entry} produced {quoted(host)}, which is not a valid entry: {why}",
                        f"fix the URL in the package manager's configuration, or list hosts instead of {entry}",
                    )
            expansions[entry] = hosts
        for host in expansions[entry]:
            remap[len(expanded)] = index
            expanded.append(host)
    data = {**data, "network": {**network, "allowedDomains": expanded}}
    return data, expansions, remap


def load_settings(
    path: Path, origin: Origin = "flag", *, environ: Mapping[str, str] = os.environ
) -> LoadedSettings:
    """Read and validate a settings file. Raises SettingsError; writes nothing, starts nothing but
    (for "@npm" only, when npm's files name no registry) `npm config get registry`."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(
            file,
            "(file)",
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
            "save it as UTF-8",
        ) from None
    except OSError as exc:
        raise SettingsError(
            file,
            "(file)",
            f"cannot read the settings file ({exc.strerror or exc})",
            "check the path and its permissions, or pass another file with -s",
        ) from None
    data = _parse_json(file, text)
    if not isinstance(data, dict):
        raise SettingsError(
            file,
            "(file)",
            f"the file holds {_json_type(data)}, not a JSON object",
            'wrap the settings in { } with "network" and "filesystem" keys',
        )
    if (null_at := _first_null(data)) is not None:
        raise SettingsError(
            file, _render_path(null_at)[0], "null is not a value here", "remove the key to get its default"
        )
    data, expansions, remap = _expand_allowed(file, copy.deepcopy(data), environ)
    try:
        # JSON mode keeps JSON's types strict (no "true" for true, no 1 for true) as srt's zod schema does.
        settings = Settings.model_validate_json(json.dumps(data), strict=True, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _to_settings_error(file, exc, remap) from None
    return LoadedSettings(settings, path, origin, tuple(collect_warnings(settings)), expansions)


class _FileSchema(GenerateJsonSchema):
    """A file may omit an optional key but never set it to null (see _first_null)."""

    def nullable_schema(self, schema: Any) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: Any) -> JsonSchemaValue:
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a settings file, as committed in docs/settings.schema.json."""
    schema = Settings.model_json_schema(by_alias=True, schema_generator=_FileSchema)
    schema["title"] = "netjail settings (srt 0.0.78 compatible)"
    return schema


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--schema"]:
        sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
        return 0
    if len(args) == 2 and args[0] == "--check":
        try:
            loaded = load_settings(Path(args[1]))
        except SettingsError as exc:
            print(exc, file=sys.stderr)
            return ExitStatus.NETJAIL_FAILED
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        sys.stdout.write(loaded.effective_json())
        return 0
    print("usage: python -m netjail.settings --schema | --check FILE", file=sys.stderr)
    return 2
