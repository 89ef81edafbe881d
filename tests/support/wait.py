"""Waiting without fixed sleeps: poll until something happens, or for a bounded window that it does not."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL = 0.02


def wait_until(predicate: Callable[[], T], timeout: float = 15.0, interval: float = POLL_INTERVAL) -> T:
    """Poll `predicate` until it returns something true or `timeout` seconds pass; return its last value, so
    the caller asserts on it (`assert wait_until(lambda: path.exists()), "never created"`)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


def stays_false(predicate: Callable[[], object], for_seconds: float, interval: float = POLL_INTERVAL) -> bool:
    """For a negative assertion: poll `predicate` for the whole window; False as soon as it is true, True when
    it stayed false throughout. Say at the call site what the window gives the chance to happen."""
    deadline = time.monotonic() + for_seconds
    while True:
        if predicate():
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(interval)
