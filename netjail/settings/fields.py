"""Value types of a settings file: each validates one JSON value (domain pattern, IP address or range, path,
name) and says what is wrong in words; and the base model every settings block shares."""

from __future__ import annotations

import ipaddress
import os
import re
import warnings
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

from netjail.net.domains import Pattern, parse_pattern
from netjail.settings.errors import Problem, json_type
from netjail.utils.text import quoted

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def require_str(value: object, example: str) -> str:
    if not isinstance(value, str):
        raise Problem(
            f"must be a string, not {json_type(value)}", f"write it in double quotes, e.g. {example}"
        )
    return value


def _pattern_validator(*, allow_any: bool, allow_port: bool = True) -> Any:
    def validate(value: object) -> Pattern:
        if isinstance(value, Pattern):
            return value
        text = require_str(value, '"example.com"')
        if text.startswith("@"):
            raise Problem(
                f"{quoted(text)} is a preset, and presets are expanded only in network.allowedDomains and network.rules[].hosts",
                "list the hosts here explicitly",
            )
        pattern = parse_pattern(text, allow_any=allow_any)
        if pattern.port is not None and not allow_port:
            raise Problem(f"{quoted(text)} has a port, which this list does not take", "remove the ':port'")
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


def unmap(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _validate_ip(value: object) -> IPAddress:
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    text = require_str(value, '"192.0.2.10"')
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        addr = None
    if addr is None or "%" in text:
        raise Problem(
            f"{quoted(text)} is not an IP address",
            'write an IPv4 address such as "192.0.2.10" or an IPv6 address such as "2001:db8::10"',
        )
    return unmap(addr)


def _validate_network(value: object) -> IPNetwork:
    """srt's address range: an IP literal or CIDR, unbracketed; IPv4-mapped IPv6 means its IPv4 range."""
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    text = require_str(value, '"10.0.0.0/8"')
    fix = 'write an address or CIDR range such as "10.0.0.0/8", "192.0.2.10" or "fc00::/7" (IPv6 unbracketed)'
    address, slash, prefix = text.partition("/")
    address = address.split("%", 1)[0]  # srt drops an IPv6 zone id here
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        raise Problem(f"{quoted(text)} is not an IP address or CIDR range", fix) from None
    width = addr.max_prefixlen
    if slash and not (re.fullmatch(r"\d{1,3}", prefix) and int(prefix) <= width):
        raise Problem(f"{quoted(text)} has an invalid prefix length (0 to {width})", fix)
    bits = int(prefix) if slash else width
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        if bits < 96:
            raise Problem(
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
        raise Problem("the path is empty", 'write a path such as "~/.ssh" or "." (the working directory)')
    for ch, name in (("\x00", "a NUL character"), ("\n", "a newline"), ("\r", "a carriage return")):
        if ch in value:
            raise Problem(f"the path {quoted(value)} contains {name}", "remove it; no real path contains one")
    return value


def _check_absolute(value: str) -> str:
    if not os.path.isabs(_check_path(value)):
        raise Problem(
            f"{quoted(value)} is not an absolute path", "give the binary's full path, e.g. /usr/bin/bwrap"
        )
    return value


def _to_path(value: object) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_check_path(require_str(value, '"~/.config/app/token"'))).expanduser()


def _validate_ca_file(value: object) -> Path:
    """A PEM file holding at least one certificate (stricter than srt, which skips unusable files)."""
    path = _to_path(value).absolute()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Problem(
            f"cannot read the CA certificate file {quoted(str(path))} ({exc.strerror or exc})",
            "give the path of an existing PEM file, or remove the entry",
        ) from None
    if not _has_pem_certificate(data):
        raise Problem(
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
FsPath = Annotated[str, PlainValidator(lambda v: _check_path(require_str(v, '"~/.ssh"'))), _PATH_SCHEMA]
AbsPath = Annotated[
    str, PlainValidator(lambda v: _check_absolute(require_str(v, '"/usr/bin/bwrap"'))), _PATH_SCHEMA
]
FilePath = Annotated[Path, PlainValidator(_to_path), PlainSerializer(str, return_type=str), _PATH_SCHEMA]
CaFile = Annotated[
    Path, PlainValidator(_validate_ca_file), PlainSerializer(str, return_type=str), _PATH_SCHEMA
]
NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
ENV_NAME_REGEX = r"^[A-Za-z_][A-Za-z0-9_]*$"
HEADER_NAME_REGEX = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
_HEX = "[0-9a-fA-F]"
GUID_REGEX = rf"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$"
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_REGEX)]
Guid = Annotated[str, StringConstraints(pattern=GUID_REGEX)]  # zod's uuid()
HeaderName = Annotated[str, StringConstraints(pattern=HEADER_NAME_REGEX, to_lower=True)]
Port = Annotated[int, Field(ge=1, le=65535)]


class SettingsModel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


def refuse_when_true(problem: str, fix: str) -> Any:
    def check(value: bool) -> bool:
        if value:
            raise Problem(problem, fix)
        return value

    return check


def refuse_present(problem: str, fix: str) -> Any:
    def check(value: Any) -> Any:
        raise Problem(problem, fix)

    return check


def field_for_alias(model: type[BaseModel], alias: str) -> tuple[str, Any] | None:
    for name, info in model.model_fields.items():
        if (info.alias or name) == alias:
            return name, info.annotation
    return None
