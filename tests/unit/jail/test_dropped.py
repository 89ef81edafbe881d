"""netjail/jail/linux/dropped.py: nft's listing of the drop sets becomes one `dropped` record per destination."""

from __future__ import annotations

from netjail.jail.linux.dropped import dropped_records

LISTING = {
    "nftables": [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"set": {"family": "inet", "name": "udp4", "table": "netjail", "elem": [
            {"elem": {"val": {"concat": ["192.0.2.7", 9999]}, "counter": {"packets": 3, "bytes": 87}}}]}},
        {"set": {"family": "inet", "name": "udp6", "table": "netjail"}},
        {"set": {"family": "inet", "name": "other4", "table": "netjail", "elem": [
            {"elem": {"val": {"concat": ["192.0.2.8", "icmp"]}, "counter": {"packets": 5, "bytes": 420}}}]}},
        {"set": {"family": "inet", "name": "other6", "table": "netjail", "elem": [
            {"elem": {"val": {"concat": ["2001:db8::8", "ipv6-icmp"]}, "counter": {"packets": 1, "bytes": 104}}}]}},
        {"counter": {"family": "inet", "name": "unlisted", "table": "netjail", "packets": 2, "bytes": 60}},
    ]
}  # fmt: skip


def test_each_destination_is_one_record_busiest_first() -> None:
    records = dropped_records(LISTING)
    assert [(r["protocol"], r["host"], r["port"], r["packets"], r["bytes_out"]) for r in records] == [
        ("icmp", "192.0.2.8", None, 5, 420),
        ("udp", "192.0.2.7", 9999, 3, 87),
        (None, None, None, 2, 60),  # beyond the sets' size: counted together
        ("icmpv6", "2001:db8::8", None, 1, 104),
    ]
    assert {(r["event"], r["verdict"], r["reason"]) for r in records} == {("dropped", "deny", "dropped")}


def test_nothing_dropped_is_no_record() -> None:
    empty = {"nftables": [{"counter": {"name": "unlisted", "packets": 0, "bytes": 0}}]}
    assert dropped_records(empty) == []
