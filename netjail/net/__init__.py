"""Host names, wildcard patterns and matching (`domains`), local ranges and this host's addresses (`addresses`),
registrable domains (`suffixes`), DNS lookups (`resolver`)."""

from netjail.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "domains": (
            "Host", "Pattern", "PatternError", "Match", "address_explicitly_allowed", "match_destination",
            "normalize_host", "parse_pattern",
        ),
        "addresses": ("IPAddress", "IPNetwork", "host_interface_addresses", "local_range_of"),
        "suffixes": ("is_public_suffix", "is_shared_parent", "registrable_domain"),
        "resolver": ("server_lookup", "system_lookup"),
    },
)  # fmt: skip
