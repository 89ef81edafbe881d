"""The proxy process (`process`), its client in the supervisor (`client`), the run CA (`ca`) and the jail's DNS
resolver (`jail_resolver`)."""

from netjail.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "ca": ("RunCA", "SYSTEM_BUNDLE_PATHS", "create_run_ca"),
        "client": ("ProxyFailed", "StandbyProxy"),
        "jail_resolver": ("JailResolverProtocol",),
    },
)
