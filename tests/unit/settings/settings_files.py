"""Settings files for the tests: a minimal srt file, variations on it, and loading or refusing them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from netjail.settings import LoadedSettings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[3]
EVERY_KEY = REPO / "tests" / "data" / "srt-every-key.json"
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def minimal() -> dict[str, Any]:
    return {
        "network": {"allowedDomains": [], "deniedDomains": []},
        "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []},
    }


def save(tmp_path: Path, data: Any, name: str = "settings.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def load(tmp_path: Path, data: Any, **kwargs: Any) -> LoadedSettings:
    return load_settings(save(tmp_path, data), **kwargs)


def refused(tmp_path: Path, data: Any) -> SettingsError:
    path = save(tmp_path, data)
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    error = info.value
    assert str(error) == f"{path}: {error.field}: {error.problem}. Fix: {error.fix}"
    assert "\n" not in str(error)
    return error


def with_(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `data` with the dotted key set."""
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
    return data


def case(path: str, value: Any) -> dict[str, Any]:
    return with_(minimal(), path, value)
