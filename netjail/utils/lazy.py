"""Package namespaces that list their public names without importing them (PEP 562): a package's `__init__`
says what it offers, and a caller pays only for the module it uses (the supervisor starts on every command's
critical path)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any]]:
    """(`__all__`, `__getattr__`) for `package`, whose submodule `m` provides the names `exports[m]`."""
    home = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return sorted(home), __getattr__


def import_without(name: str, hidden: str) -> None:
    """Import `name` while `hidden` looks absent, so that an optional dependency it would load stays out (structlog
    imports rich, ~120 ms, only to pretty-print tracebacks: the supervisor renders its own messages). `hidden`
    stays importable for the code that asks for it itself."""
    import sys

    if name in sys.modules or hidden in sys.modules:
        return
    sys.modules[hidden] = None  # type: ignore[assignment]  # makes `import hidden` fail inside `name` only
    try:
        importlib.import_module(name)
    finally:
        del sys.modules[hidden]
