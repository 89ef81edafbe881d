"""What a run's masked credentials look like inside the jail: each `mode: "mask"` variable holds its placeholder, and
each masked file is a per-run copy with placeholders in place of the secrets, bound over the real file (the real file
stays denied underneath, so a backend that cannot bind — macOS — leaves it unreadable). The copies live in the run's
live directory, which no jail can see or write; the real values go to the proxy over its control socket only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from netjail.policy.credentials import Credential, MaskResult, mask_text
from netjail.settings import Settings
from netjail.settings.credentials import (
    CredentialEnvVar,
    CredentialFile,
    compile_extract,
    effective_inject_hosts,
)

WHOLE_VALUE = re.compile(r"\A(.*)\Z", re.DOTALL)
# All real values of a run together: they travel in the proxy's one control message.
MAX_SECRET_BYTES = 24 * 1024


class CredentialError(Exception):
    """A masked credential cannot be prepared as the settings ask: the run must not start (exit 125)."""


@dataclass
class MaskPlan:
    env: dict[str, str] = field(default_factory=dict)  # variable -> what the command sees
    withheld: list[str] = field(default_factory=list)  # variables the command does not get at all
    files: list[tuple[Path, Path]] = field(default_factory=list)  # (real file, masked copy bound over it)
    credentials: list[Credential] = field(default_factory=list)  # for the proxy
    warnings: list[str] = field(default_factory=list)
    allow_plaintext_inject: bool = False
    # SigV4 re-signing: {"access_key_id", "secret", "token"} -> names of credentials above; settings credentials.sigv4
    aws_pairs: list[dict[str, str | None]] = field(default_factory=list)
    sigv4: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, object]:
        """For `-d`: names and hosts only, never a value."""
        return {
            "masked": [c.name for c in self.credentials],
            "inject_hosts": {c.name: [p.source for p in c.inject_hosts] for c in self.credentials},
            "files": [str(real) for real, _ in self.files],
            "withheld": self.withheld,
        }


def _file_path(entry: CredentialFile, cwd: Path) -> Path:
    path = Path(os.path.expanduser(entry.path))
    return Path(os.path.realpath(path if path.is_absolute() else cwd / path))


def _mask(
    entry: CredentialEnvVar | CredentialFile, real: str, taken: list[str], whole_value: bool
) -> MaskResult:
    extract = compile_extract(entry.extract) if entry.extract is not None else None
    if extract is None and entry.decode is not None and whole_value:
        extract = WHOLE_VALUE  # a variable's whole value must verify (srt); a file is searched for candidates
    return mask_text(
        real,
        extract=extract,
        decode=entry.decode,
        mask_claims=entry.mask_claims,
        mask_duplicates=bool(getattr(entry, "mask_duplicates", False)),
        whole_value=whole_value,
        taken=taken,
    )


def prepare_credentials(settings: Settings, environ: Mapping[str, str], cwd: Path, copies: Path) -> MaskPlan:
    """The plan for one run: placeholders minted, masked copies written under `copies` (private to netjail)."""
    creds = settings.credentials
    plan = MaskPlan(allow_plaintext_inject=creds.allow_plaintext_inject)
    plan.withheld += [v.name for v in creds.env_vars if v.mode == "deny"]
    taken: list[str] = []
    by_variable: dict[str, str] = {}  # masked whole-value variable -> its credential's name

    def no_match(where: str, entry: CredentialEnvVar | CredentialFile, what: str, instead: str) -> None:
        action = entry.no_match
        fix = 'fix extract (group 1 must match the secret), or set onExtractNoMatch to "deny"'
        if action == "error":
            raise CredentialError(
                f'{where}: {what}, so nothing could be masked (onExtractNoMatch "error"). Fix: {fix}'
            )
        if action == "warn":  # srt leaves the real value readable here; netjail withholds it
            plan.warnings.append(
                f"{where}: {what}; {instead} inside the jail (netjail never passes it unmasked)"
            )

    def register(where: str, entry: CredentialEnvVar | CredentialFile, result: MaskResult) -> None:
        hosts = tuple(effective_inject_hosts(entry, settings.network))
        for index, swap in enumerate(result.swaps):
            name = where if len(result.swaps) == 1 else f"{where}#{index}"
            plan.credentials.append(
                Credential(name, swap.placeholder, swap.real, hosts, tuple(entry.pinned_headers))
            )
            taken.append(swap.placeholder)

    for index, var in enumerate(creds.env_vars):
        where = f"credentials.envVars[{index}] ({var.name})"
        real = environ.get(var.name)
        if var.mode != "mask" or real is None:
            continue  # an unset variable stays unset: there is nothing to protect (srt)
        result = _mask(var, real, taken, whole_value=True)
        if not result.matched:
            plan.withheld.append(var.name)
            no_match(
                where,
                var,
                f"{var.name} holds nothing that extract or decode matches",
                "the variable is withheld",
            )
            continue
        plan.env[var.name] = result.text
        register(where, var, result)
        if len(result.swaps) == 1:
            by_variable[var.name] = plan.credentials[-1].name

    copies.mkdir(mode=0o700, exist_ok=True)
    for index, entry in enumerate(creds.files):
        where = f"credentials.files[{index}] ({entry.path})"
        if entry.mode != "mask":
            continue
        path = _file_path(entry, cwd)
        if not path.is_file():
            continue  # nothing to mask; the path stays denied (it is in denyRead)
        try:
            real = path.read_bytes().decode("utf-8", "surrogateescape")
        except OSError as e:
            raise CredentialError(
                f"{where}: cannot read {path} ({e.strerror}). Fix: make it readable or remove the entry"
            ) from e
        result = _mask(entry, real, taken, whole_value=False)
        if not result.matched:
            no_match(
                where,
                entry,
                f"{path} holds nothing that extract or decode matches",
                "the file stays unreadable",
            )
            continue
        copy = copies / f"file-{index}"
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(result.text.encode("utf-8", "surrogateescape"))
        plan.files.append((path, copy))
        register(where, entry, result)

    for pair in creds.pairs:
        key, secret = by_variable.get(pair.access_key_id_var), by_variable.get(pair.secret_access_key_var)
        if key is not None and secret is not None:  # both set on the host: something to re-sign with
            token = by_variable.get(pair.session_token_var) if pair.session_token_var else None
            plan.aws_pairs.append({"access_key_id": key, "secret": secret, "token": token})
    if creds.sigv4 is not None:
        plan.sigv4 = {k: v for k, v in creds.sigv4.model_dump().items() if v is not None}

    size = sum(len(c.real.encode("utf-8", "surrogateescape")) for c in plan.credentials)
    if size > MAX_SECRET_BYTES:
        raise CredentialError(
            f"credentials: the masked secrets take {size} bytes, more than netjail holds ({MAX_SECRET_BYTES}). "
            "Fix: mask the secrets inside large files with extract rather than the whole file"
        )
    return plan
