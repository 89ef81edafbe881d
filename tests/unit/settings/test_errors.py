"""SettingsError: one line with file, field, problem and fix."""

from __future__ import annotations

from netjail.settings import SettingsError


def test_settings_error_format() -> None:
    error = SettingsError("/x/s.json", "network.allowedDomains[2]", "bad entry.", "write a host.")
    assert str(error) == "/x/s.json: network.allowedDomains[2]: bad entry. Fix: write a host"
