"""What the jail's network dropped: UDP (other than DNS), ICMP and any other protocol, counted per destination.

The egress chain (netjail/jail/linux/capture.py) adds each dropped packet's destination to a dynamic nft set with
a counter. When the run ends the command's processes are gone, so the namespace is kept alive by descriptors of
its user and network namespaces, which the helper that made them handed over. A child enters both (the
supervisor's user owns that user namespace, so this works rootless) and runs `nft -j list table`; the sets
become one `dropped` record per destination (docs/records.md).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
from typing import Any

from netjail.jail.linux.capture import DROP_SETS, CaptureError, _ambient_net_admin, tool
from netjail.records.log import utc_timestamp

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PROTOCOL_NAMES = {"icmp": "icmp", "ipv6-icmp": "icmpv6", "udp": "udp", "tcp": "tcp"}


def read_dropped(userns_fd: int, netns_fd: int) -> list[dict[str, Any]]:
    """The `dropped` records of the namespace: one per destination, and one for drops beyond the sets' size.
    Raises CaptureError when the counters cannot be read."""
    try:
        nft = tool("nft")
        done = subprocess.run(
            [nft, "-j", "list", "table", "inet", "netjail"],
            capture_output=True,
            text=True,
            timeout=10,
            preexec_fn=lambda: _enter(userns_fd, netns_fd),
            pass_fds=(userns_fd, netns_fd),
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise CaptureError(f"cannot read the dropped-packet counters: {e}") from e
    if done.returncode != 0:
        raise CaptureError(
            f"cannot read the dropped-packet counters: {done.stderr.strip() or done.returncode}"
        )
    try:
        return dropped_records(json.loads(done.stdout))
    except (ValueError, KeyError, TypeError) as e:
        raise CaptureError(f"unexpected nft output: {e}") from e


def _enter(userns_fd: int, netns_fd: int) -> None:  # pragma: no cover - runs in the forked child
    libc = ctypes.CDLL(None, use_errno=True)
    for fd, kind in ((userns_fd, CLONE_NEWUSER), (netns_fd, CLONE_NEWNET)):
        if libc.setns(fd, kind) != 0:
            raise OSError(ctypes.get_errno(), f"setns: {os.strerror(ctypes.get_errno())}")
    _ambient_net_admin(libc, True)  # nft is a separate program: the capability must survive exec


def dropped_records(listing: dict) -> list[dict[str, Any]]:
    """`nft -j list table inet netjail` -> records, busiest destination first."""
    now = utc_timestamp()
    records: list[dict[str, Any]] = []
    for entry in listing.get("nftables", []):
        if "set" in entry and entry["set"].get("name") in DROP_SETS:
            udp = entry["set"]["name"].startswith("udp")
            for element in entry["set"].get("elem", []):
                element = element.get("elem", element)
                address, second = element["val"]["concat"]
                counter = element.get("counter") or {}
                records.append(
                    _record(
                        now,
                        "udp" if udp else PROTOCOL_NAMES.get(str(second), str(second)),
                        str(address),
                        int(second) if udp else None,
                        counter,
                    )
                )
        elif (
            "counter" in entry and entry["counter"].get("name") == "unlisted" and entry["counter"]["packets"]
        ):
            records.append(_record(now, None, None, None, entry["counter"]))
    return sorted(records, key=lambda r: -r["packets"])


def _record(ts: str, protocol: str | None, host: str | None, port: int | None, counter: dict) -> dict:
    """Shaped like a denied flow where the fields mean the same (host, port, bytes_out, verdict, reason), so
    that `netjail flows --denied` and the counts take it as it is."""
    return {
        "event": "dropped",
        "ts": ts,
        "protocol": protocol,
        "host": host,
        "port": port,
        "packets": int(counter.get("packets", 0)),
        "bytes_out": int(counter.get("bytes", 0)),
        "verdict": "deny",
        "rule": "capture",
        "reason": "dropped",
    }
