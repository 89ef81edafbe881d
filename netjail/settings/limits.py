"""`network.limits`: the sizes past which the proxy refuses a request before parsing it (addons/limits.py), and
the upload caps: bytes the command may send per request, per host and per run (addons/uploads.py).

The defaults sit above what real clients send and at or above what common servers accept, so a request refused
here would have been refused by its origin too; the reasons for each number are in docs/security.md.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from netjail.settings.fields import SettingsModel

Positive = Annotated[int, Field(ge=1)]


class NetworkLimits(SettingsModel):
    max_request_line_bytes: Positive = Field(
        default=40_960, description="HTTP/1 request line (method, target, version); past it: 414."
    )
    max_url_bytes: Positive = Field(
        default=32_768, description="Request target (URL) of any HTTP version; 414."
    )
    max_header_count: Positive = Field(default=256, description="Header fields of one request; past it: 431.")
    max_header_bytes: Positive = Field(default=16_384, description="One header field, name and value; 431.")
    max_header_block_bytes: Positive = Field(
        default=65_536, description="All header fields of one request together (not the request line); 431."
    )
    max_chunk_line_bytes: Positive = Field(
        default=4_096, description="One chunk-size line of a chunked body, extensions included; past it: 400."
    )
    max_websocket_message_bytes: Positive = Field(
        default=16_777_216,
        description="One WebSocket message, all its fragments together; past it: close 1009.",
    )
    max_websocket_fragments: Positive = Field(
        default=4_096, description="Frames (fragments) of one WebSocket message; past it: close 1009."
    )
    max_request_upload_bytes: Positive | None = Field(
        default=None,
        description=(
            "Bytes one request may send: request line, headers and body (for a WebSocket, its messages too; for "
            "raw TCP, the connection's bytes); past it: 413, or the stream is cut. Default: no cap."
        ),
    )
    max_host_upload_bytes: Positive | None = Field(
        default=None,
        description="Bytes the run may send to one host, all its requests together; default: no cap.",
    )
    max_run_upload_bytes: Positive | None = Field(
        default=None, description="Bytes the run may send to all hosts together; default: no cap."
    )
