"""`python -m netjail.settings --check FILE | --schema | --reference`: check a file and print the settings in
force (its warnings on stderr), or print the JSON Schema, or the settings reference (docs/settings.md). Exit 0, 125 for a refused file, 2 for a usage error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from netjail.settings.errors import SettingsError
from netjail.settings.load import load_settings
from netjail.settings.schema import json_schema
from netjail.utils.status import ExitStatus


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--schema"]:
        sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
        return 0
    if args == ["--reference"]:
        from netjail.settings.reference import render_reference

        sys.stdout.write(render_reference())
        return 0
    if len(args) == 2 and args[0] == "--check":
        try:
            loaded = load_settings(Path(args[1]))
        except SettingsError as exc:
            print(exc, file=sys.stderr)
            return ExitStatus.NETJAIL_FAILED
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        sys.stdout.write(loaded.effective_json())
        return 0
    print("usage: python -m netjail.settings --schema | --reference | --check FILE", file=sys.stderr)
    return 2
