"""The package layout is the architecture: each layer imports only from the layers below it.

Every import is counted, at module level or inside a function, and also those under `if TYPE_CHECKING:`; the
order and the reasons for it are in docs/design.md ("The map").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Lowest first. `addons` is the repository's top-level folder of mitmproxy addons, installed as `netjail.addons`
# (pyproject.toml maps it); `netjail` itself (the root package: the version) may be imported from anywhere.
LAYERS = (
    "utils",
    "net",
    "settings",
    "policy",
    "detect",
    "records",
    "addons",
    "proxy",
    "jail",
    "run",
    "inspect",
    "cli",
    "api",
)
# Backends of the platform interface: neither knows the other, and `netjail.jail` itself knows neither.
BACKENDS = ("netjail.jail.linux", "netjail.jail.macos")


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "addons":  # the folder's own name, as `mitmdump -s addons/…` and older code knew it
        return "addons"
    if parts[0] == "netjail" and len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return None


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """Every module a source imports, with its line: `from a.b import c` counts as both `a.b` and `a.b.c`
    (c may be a module), relative imports resolved against `module`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _backend_of(module: str) -> str | None:
    return next((b for b in BACKENDS if module == b or module.startswith(b + ".")), None)


def violations(sources: dict[str, str]) -> list[str]:
    """`module:line imports target` for every import that points up the layer order or across backends."""
    problems = []
    for module, source in sorted(sources.items()):
        own = layer_of(module)
        if own is None:
            continue
        for line, target in imported_modules(source, module):
            theirs = layer_of(target)
            if theirs is None:
                continue
            if LAYERS.index(theirs) > LAYERS.index(own):
                problems.append(f"{module}:{line} imports {target} ({own} may not import {theirs})")
            elif theirs == own == "jail":
                mine, other = _backend_of(module), _backend_of(target)
                if other is not None and mine != other:
                    where = f"backend {mine}" if mine else "the platform interface"
                    problems.append(f"{module}:{line} imports {target} ({where} may not import {other})")
    return problems


# Each folder of the repository and the package it is installed as.
INSTALLED_AS = {"netjail": "netjail", "addons": "netjail.addons"}


def repository_sources() -> dict[str, str]:
    """Every module's source by the name it is imported under once installed."""
    sources = {}
    for folder, package in INSTALLED_AS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = [package, *path.relative_to(REPO / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert violations(repository_sources()) == []


def test_the_addons_are_known_by_their_installed_name() -> None:
    sources = repository_sources()
    assert {"netjail.addons.policy", "netjail.addons.recorder", "netjail.addons.proxyauth"} <= set(sources)
    assert {layer_of(m) for m in sources if m.startswith("netjail.addons")} == {"addons"}


def test_no_code_imports_the_addons_folder_by_its_checkout_name() -> None:
    """`addons` is importable only from a checkout's root; installed, it is `netjail.addons`."""
    found = []
    for folder in ("netjail", "addons", "tests", "bench"):
        for path in (REPO / folder).rglob("*.py"):
            for line, target in imported_modules(path.read_text(encoding="utf-8"), "tests.x"):
                if target == "addons" or target.startswith("addons."):
                    found.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert found == []


def test_every_package_of_netjail_is_a_known_layer() -> None:
    packages = sorted(p.name for p in (REPO / "netjail").iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(set(LAYERS) - {"addons"})


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("netjail.policy.decision", "from netjail.run.runner import run\n", "policy may not import run"),
        ("netjail.records.read", "def f():\n    import netjail.cli.group\n", "records may not import cli"),
        (
            "netjail.utils.text",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from netjail.settings import Settings\n",
            "utils may not import settings",
        ),
        ("addons.recorder", "from netjail.proxy import process\n", "addons may not import proxy"),
        ("netjail.addons.recorder", "from netjail.proxy import process\n", "addons may not import proxy"),
        (
            "netjail.records.rundir",
            "from netjail.addons.recorder import flow_record\n",
            "records may not import addons",
        ),
        (
            "netjail.jail.spec",
            "def f():\n    from netjail.jail.linux.bwrap import BwrapJail\n",
            "the platform interface may not import netjail.jail.linux",
        ),
        (
            "netjail.jail.linux.bwrap",
            "from netjail.jail.macos import seatbelt\n",
            "backend netjail.jail.linux may not import netjail.jail.macos",
        ),
        ("netjail.settings.load", "from ..run import runner\n", "settings may not import run"),
    ],
)
def test_a_planted_upward_import_is_caught(module: str, source: str, expected: str) -> None:
    found = violations({module: source})
    assert len(found) >= 1 and expected in found[0], found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        (
            "netjail.run.runner",
            "from netjail.settings import load_settings\nimport netjail.jail.linux.bwrap\n",
        ),
        (
            "netjail.jail.linux.bwrap",
            "from netjail.jail.spec import JailSpec\nfrom netjail.proxy.ca import RunCA\n",
        ),
        ("addons.policy", "from netjail.policy.decision import Policy\nimport mitmproxy.http\n"),
        ("netjail.addons.policy", "from netjail.policy.decision import Policy\nimport mitmproxy.http\n"),
        ("netjail.proxy.process", "import netjail.addons.policy\nfrom netjail.addons.recorder import R\n"),
        ("netjail.cli.group", "from netjail import __version__\n"),
    ],
)
def test_downward_and_sideways_imports_are_allowed(module: str, source: str) -> None:
    assert violations({module: source}) == []


LONG_MODULE = 520  # "no module over ~500 lines" (docs/design.md), with some slack for a growing table


def test_a_module_over_500_lines_says_why_at_its_top() -> None:
    unexplained = []
    for path in [*(REPO / "netjail").rglob("*.py"), *(REPO / "addons").glob("*.py")]:
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > LONG_MODULE and not any("Over 500 lines" in line for line in lines[:6]):
            unexplained.append(f"{path.relative_to(REPO)}: {len(lines)} lines")
    assert unexplained == [], "split it by concern, or say at its top why it is one idea"
