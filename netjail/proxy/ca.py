"""The per-run certificate authority and the trust bundle the jailed command sees.

The CA key is an EC P-256 key: generating it costs well under a millisecond where RSA-2048 costs tens, and
mitmproxy signs its leaf certificates with the CA's key type. The files use mitmproxy's confdir names so
`CertStore.from_store` loads them as they are.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CONFDIR_BASENAME = "mitmproxy"

# Where distributions keep the system bundle. The first that exists is the host's trust store; every one that
# exists is covered inside the jail by the bundle that adds netjail's CA.
SYSTEM_BUNDLE_PATHS = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",  # macOS, Alpine
)


@dataclass(frozen=True)
class RunCA:
    confdir: Path  # mitmproxy's confdir: key and certificate (private to netjail)
    cert_path: Path  # the CA certificate alone (safe to show inside the jail)
    host_bundle: Path  # host roots + extraCaCertPaths: what upstream servers are verified against
    jail_bundle: Path  # host roots + extraCaCertPaths + the run CA: what the jailed command trusts


def host_bundle_path() -> Path | None:
    for candidate in SYSTEM_BUNDLE_PATHS:
        if os.path.isfile(candidate):
            return Path(candidate)
    default = ssl.get_default_verify_paths().cafile
    return Path(default) if default and os.path.isfile(default) else None


def create_run_ca(directory: Path, extra_ca_paths: Iterable[Path] = ()) -> RunCA:
    """Write a fresh CA into `directory` (which must be private) and the two bundles beside it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"netjail run CA {directory.parent.name}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netjail"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2))  # mitmproxy's leaves are backdated as well
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

    confdir = directory / "confdir"
    confdir.mkdir(mode=0o700, exist_ok=True)
    _write_private(confdir / f"{CONFDIR_BASENAME}-ca.pem", key_pem + cert_pem)
    _write_private(confdir / f"{CONFDIR_BASENAME}-ca-cert.pem", cert_pem)

    host_roots = b""
    if (system := host_bundle_path()) is not None:
        host_roots = system.read_bytes()
    extras = b"".join(_with_newline(Path(p).read_bytes()) for p in extra_ca_paths)
    host_bundle = directory / "upstream-trust.pem"
    _write_private(host_bundle, _with_newline(host_roots) + extras)

    # The jail-visible files are bound read-only into the jail; they hold no secret.
    cert_path = directory / "netjail-ca.pem"
    cert_path.write_bytes(cert_pem)
    jail_bundle = directory / "jail-trust.pem"
    jail_bundle.write_bytes(_with_newline(host_roots) + extras + cert_pem)
    for public in (cert_path, jail_bundle):
        os.chmod(public, 0o644)
    return RunCA(confdir=confdir, cert_path=cert_path, host_bundle=host_bundle, jail_bundle=jail_bundle)


def _with_newline(data: bytes) -> bytes:
    return data if not data or data.endswith(b"\n") else data + b"\n"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
