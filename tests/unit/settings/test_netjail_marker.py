"""`@netjail` in allowedDomains: the marker of a file that relies on netjail's restrictive additions. netjail
loads it as no host at all; srt refuses every "@" entry, so such a file fails under srt rather than running with
its network.rules and network.limits silently dropped (docs/policy.md, "Under srt")."""

from __future__ import annotations

import json
from pathlib import Path

from netjail.settings import load_settings


def _load(tmp_path: Path, allowed: list[str]):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"network": {"allowedDomains": allowed, "deniedDomains": []},
                                "filesystem": {"denyRead": [], "allowWrite": [], "denyWrite": []}}))  # fmt: skip
    return load_settings(path)


def test_the_marker_adds_no_host(tmp_path: Path) -> None:
    marked = _load(tmp_path, ["@netjail", "a.test"])
    assert [p.source for p in marked.settings.network.allowed_domains] == ["a.test"]
    assert marked.expansions == {"@netjail": []}
    control = _load(tmp_path, ["a.test"])
    assert control.settings.network.allowed_domains == marked.settings.network.allowed_domains
