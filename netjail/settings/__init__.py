"""Settings: srt's JSON and netjail's additions, validated into typed models, with every srt key's verdict.

errors (how a file is refused) < fields (value types) < network, filesystem < models (Settings) < srt_keys
(verdicts) < validation_errors < load < schema < tool (`python -m netjail.settings`); presets apart.
"""

from netjail.settings.errors import SettingsError
from netjail.settings.filesystem import FilesystemSettings
from netjail.settings.load import BUNDLED_DEFAULT, LoadedSettings, find_settings_path, load_settings
from netjail.settings.models import AuditSettings, RecordSettings, RetentionSettings, Settings
from netjail.settings.network import NetworkSettings, TlsTerminate
from netjail.settings.schema import json_schema
from netjail.settings.srt_keys import NETJAIL_KEYS, SRT_KEYS, Verdict
from netjail.settings.tool import main

__all__ = [
    "BUNDLED_DEFAULT",
    "NETJAIL_KEYS",
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
    "main",
]
