"""Helpers for the test suite: loopback origin servers, the netjail runner, a DNS server, polling waits."""
