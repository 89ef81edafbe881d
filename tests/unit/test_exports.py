"""Each package's `__init__` lists its public names, and every one of them is there."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["netjail.utils", "netjail.net", "netjail.policy", "netjail.detect", "netjail.records", "netjail.proxy",
            "netjail.jail", "netjail.run", "netjail.inspect", "netjail.cli", "netjail.settings"]  # fmt: skip


@pytest.mark.parametrize("package", PACKAGES)
def test_every_listed_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, f"{package} lists no public names"
    for name in module.__all__:
        value = getattr(module, name, None)
        if value is None:  # a module listed by name (netjail.inspect)
            value = importlib.import_module(f"{package}.{name}")
        assert value is not None, f"{package}.{name}"


@pytest.mark.parametrize("package", ["netjail.utils", "netjail.net", "netjail.policy", "netjail.proxy",
                                     "netjail.jail", "netjail.run", "netjail.inspect"])  # fmt: skip
def test_importing_a_package_imports_none_of_its_modules(package: str) -> None:
    code = (
        f"import sys, {package}; "
        f"print(sorted(m for m in sys.modules if m.startswith('{package}.') and m != 'netjail.utils.lazy'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
