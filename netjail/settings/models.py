"""The whole settings file: srt's top-level keys, its credentials, ripgrep, seccomp, windows and git blocks,
and netjail's additions (envPassthrough, audit, record, retention). The network and filesystem blocks have
their own modules.

Field order follows srt's schema; netjail's additions come last in each model.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from netjail.settings.credentials import CredentialsSettings, check_inject_hosts
from netjail.settings.errors import Problem
from netjail.settings.fields import (
    AbsPath,
    EnvName,
    FilePath,
    Guid,
    HeaderName,
    NonEmptyStr,
    SettingsModel,
    refuse_when_true,
)
from netjail.settings.filesystem import FilesystemSettings
from netjail.settings.network import NetworkSettings


class RipgrepConfig(SettingsModel):
    command: str
    args: list[str] | None = None
    argv0: str | None = None


class SeccompConfig(SettingsModel):
    apply_path: str | None = None
    argv0: str | None = None


class SrtWinConfig(SettingsModel):
    path: NonEmptyStr


def _check_port_range(value: tuple[int, int]) -> tuple[int, int]:
    low, high = value
    if not (low <= high and high - low <= 64):
        raise Problem(
            "low must be at most high and the range at most 64 ports wide (as in srt)", "fix the range"
        )
    return value


class WindowsConfig(SettingsModel):
    sandbox_user: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = None
    sublayer_guid: Guid | None = None
    wfp_sublayer_guid: Guid | None = None
    proxy_port_range: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(le=65535)]] | None = None
    srt_win: SrtWinConfig | None = None

    _port_range = field_validator("proxy_port_range")(lambda v: v if v is None else _check_port_range(v))


class GitConfig(SettingsModel):
    safe_directories: list[str] = []


class AuditSettings(SettingsModel):
    """netjail addition: secrets whose values the audit report looks for in recorded traffic, and canaries."""

    secret_env: list[EnvName] = []
    secret_files: list[FilePath] = []
    canaries: bool = Field(
        default=False,
        description=(
            "Plant per-run decoy credentials (AWS, GitHub, npm, PyPI and LLM-provider key shapes) in the jail's "
            "environment under names no tool reads by default, and a decoy credentials file at "
            "/run/secrets/deploy/credentials (Linux). A canary seen in any request or DNS name is denied and "
            "stops the run with exit status 122 (docs/credentials.md, Canaries)."
        ),
    )


class RecordSettings(SettingsModel):
    """netjail addition: what the recorder keeps in flows.mitm, and what the supervisor observes."""

    body_cap: Annotated[int, Field(ge=0)] = Field(
        default=1_048_576, description="Bytes kept of each request and response body (0 = none)."
    )
    redact_headers: list[HeaderName] = Field(
        default=["authorization", "cookie", "proxy-authorization"],
        description="Header names whose values are replaced before a flow is written (case-insensitive).",
    )
    refused_writes: bool = Field(
        default=True,
        description=(
            "Observe the writes the jail refuses (Linux: seccomp user notification on write calls; macOS: the sandbox's violation log), to name them "
            "after the run and in `netjail why` / `learn`. Each write call then costs a round trip to netjail "
            "(docs/performance.md); false turns the observer off."
        ),
    )


class RetentionSettings(SettingsModel):
    """netjail addition: how long run directories are kept. Applied by `netjail runs --prune`."""

    max_age_days: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Remove runs that started more than this many days ago."
    )
    max_total_mb: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        alias="maxTotalMB",
        description="Then remove the oldest runs until all runs together take at most this many MB (10^6 bytes).",
    )


class Settings(SettingsModel):
    schema_uri: str | None = Field(default=None, alias="$schema", description="Ignored; for editors.")
    network: NetworkSettings
    filesystem: FilesystemSettings
    credentials: CredentialsSettings = Field(default_factory=CredentialsSettings)
    ignore_violations: dict[str, list[str]] = {}
    enable_weaker_nested_sandbox: bool = False
    allow_nested_user_namespaces: bool = False
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
        refuse_when_true(
            "netjail has no weaker nested-sandbox mode (srt's drops /proc and namespace isolation)",
            "remove the key or set it to false; run netjail where unprivileged user namespaces work",
        )
    )
    _refuse_nested_userns = field_validator("allow_nested_user_namespaces")(
        refuse_when_true(
            "a command that can create user namespaces can unmount the read-only binds that enforce denyWrite "
            "and the mandatory protections (srt says so too)",
            "remove the key or set it to false; run the tool that needs its own namespaces outside the jail",
        )
    )
    _refuse_weaker_net = field_validator("enable_weaker_network_isolation")(
        refuse_when_true(
            "netjail has no weaker network isolation mode (srt's opens a macOS trust service to the sandbox)",
            "remove the key or set it to false",
        )
    )
    _refuse_apple_events = field_validator("allow_apple_events")(
        refuse_when_true(
            "netjail never lets the command launch programs outside the jail (srt's allowAppleEvents does, on macOS)",
            "remove the key or set it to false",
        )
    )

    @model_validator(mode="after")
    def _apply_credentials(self) -> Settings:
        # Credential files are denied reads, whatever their mode: merged into denyRead so every jail backend
        # applies them without knowing about credentials; a backend that masks binds the masked copy on top.
        extra = [f.path for f in self.credentials.files if f.path not in self.filesystem.deny_read]
        if extra:
            deny_read = [*self.filesystem.deny_read, *dict.fromkeys(extra)]
            self.filesystem = self.filesystem.model_copy(update={"deny_read": deny_read})
        withheld = {v.name: v.mode for v in self.credentials.env_vars}
        for index, name in enumerate(self.env_passthrough):
            if name in withheld:
                raise Problem(
                    f"{name} is passed into the jail here but credentials.envVars withholds it (mode {withheld[name]!r})",
                    "remove it from one of the two lists",
                    at=("envPassthrough", index),
                )
        try:
            check_inject_hosts(self.credentials, self.network)
        except Problem as problem:
            problem.at = ("credentials", *problem.at)  # reported from the root: the path starts here
            raise
        return self
