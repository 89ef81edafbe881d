"""What the proxy process needs of the settings, as frozen plain values: validated and compiled by the supervisor
(`ProxySettings.of`), pickled over the proxy's control socket (a socketpair between a parent and its own child),
so that the proxy never imports pydantic nor reads the file again. The stock-mitmdump addons build the same value
from the file they are given (`ProxySettings.load`)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from netjail.policy.decision import NetworkRules

if TYPE_CHECKING:
    from netjail.settings import Settings
    from netjail.settings.limits import NetworkLimits


@dataclass(frozen=True, slots=True)
class ParserLimits:
    """`network.limits`; the defaults are NetworkLimits' (tests/unit/policy/test_proxy_settings.py keeps them equal)."""

    max_request_line_bytes: int = 40_960
    max_url_bytes: int = 32_768
    max_header_count: int = 256
    max_header_bytes: int = 16_384
    max_header_block_bytes: int = 65_536
    max_chunk_line_bytes: int = 4_096
    max_websocket_message_bytes: int = 16_777_216
    max_websocket_fragments: int = 4_096
    max_request_upload_bytes: int | None = None
    max_host_upload_bytes: int | None = None
    max_run_upload_bytes: int | None = None

    @classmethod
    def of(cls, limits: NetworkLimits) -> ParserLimits:
        return cls(**{f.name: getattr(limits, f.name) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class ProxySettings:
    network: NetworkRules
    limits: ParserLimits
    body_cap: int  # record.bodyCap
    redact_headers: frozenset[str]  # record.redactHeaders, lower case
    secret_env: tuple[str, ...]  # audit.secretEnv
    secret_files: tuple[str, ...]  # audit.secretFiles

    @classmethod
    def of(cls, settings: Settings) -> ProxySettings:
        return cls(
            network=NetworkRules.of(settings.network),
            limits=ParserLimits.of(settings.network.limits),
            body_cap=settings.record.body_cap,
            redact_headers=frozenset(h.lower() for h in settings.record.redact_headers),
            secret_env=tuple(settings.audit.secret_env),
            secret_files=tuple(str(p) for p in settings.audit.secret_files),
        )

    @classmethod
    def load(cls, path: Path) -> ProxySettings:
        """The value of a settings file (stock `mitmdump --set netjail_settings=FILE`): only this imports the
        loader. Raises SettingsError."""
        from netjail.settings import load_settings

        return cls.of(load_settings(path).settings)

    def dumps(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, data: bytes) -> ProxySettings:
        """Only ever from the supervisor over the control socket: pickle is not for data anyone else wrote."""
        value = pickle.loads(data)
        if not isinstance(value, cls):
            raise TypeError(f"expected ProxySettings, got {type(value).__name__}")
        return value
