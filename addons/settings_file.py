"""The settings an addon works with: those of the file named by the `netjail_settings` option (stock mitmdump:
`mitmdump -s addons/policy.py --set netjail_settings=FILE`), else the value netjail's proxy process handed it
(`netjail.policy.proxy_settings`, validated by the supervisor). Only the first way imports the settings loader
(pydantic), and only when a file is named."""

from __future__ import annotations

from pathlib import Path

from mitmproxy import ctx, exceptions

from netjail.policy.proxy_settings import ProxySettings

OPTION_HELP = "Path of a netjail (or srt) settings file."


def add_settings_option(loader) -> None:
    if "netjail_settings" not in loader.master.options:
        loader.add_option("netjail_settings", str, "", OPTION_HELP)


def configured_settings(given: ProxySettings | None) -> ProxySettings | None:
    if not ctx.options.netjail_settings:
        return given
    from netjail.settings import SettingsError

    try:
        return ProxySettings.load(Path(ctx.options.netjail_settings))
    except SettingsError as e:
        raise exceptions.OptionsError(str(e)) from e
