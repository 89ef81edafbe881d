"""The JSON Schema export."""

from __future__ import annotations

import json

from netjail.settings import json_schema

from .settings_files import REPO


def test_committed_schema_is_the_export() -> None:
    committed = json.loads((REPO / "docs" / "settings.schema.json").read_text())
    assert committed == json_schema()
