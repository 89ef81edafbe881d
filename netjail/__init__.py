"""netjail: run a command in a jail whose every byte of egress is judged and recorded by mitmproxy."""

__version__ = "0.1.0"
