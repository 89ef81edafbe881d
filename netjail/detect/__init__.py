"""The audit detectors: exfiltration flags (`flags`) and the configured secrets (`secrets`), standard library only;
`netjail.detect.mitm` applies them to mitmproxy flows (and is not imported here: it needs mitmproxy)."""

from netjail.detect.flags import BodyScanner, BurstCounter, flags_for_record
from netjail.detect.secrets import Secrets, redact_record

__all__ = ["BodyScanner", "BurstCounter", "Secrets", "flags_for_record", "redact_record"]
