"""Files installed with netjail: the bundled settings, from the repository's configs/ (an editable install)
or the installed package's netjail/configs/ (a wheel), found the same way in both."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["bundled_config"]


def bundled_config(name: str) -> Path:
    """The bundled settings file `name` (e.g. "default.json") as a path on disk; the file need not exist.
    A path, not a Traversable: the settings file is named in messages and records, and read like any other."""
    if name in ("", ".", "..") or Path(name).name != name:
        raise ValueError(f"a bundled config is named by its file name alone, not {name!r}")
    resource = files("netjail.configs").joinpath(name)
    if not isinstance(resource, Path):
        raise RuntimeError(f"netjail's bundled settings are not on the file system ({resource})")
    return resource.resolve()
