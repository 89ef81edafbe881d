"""The pure decision (`decision`: request facts → Verdict) and the jail resolver's synthetic addresses."""

from netjail.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "decision": ("Policy", "Verdict", "allow", "deny", "failed_closed"),
        "synthetic": ("SYNTHETIC_V4", "SYNTHETIC_V6", "SyntheticAddresses", "SyntheticAddressesExhausted"),
    },
)
