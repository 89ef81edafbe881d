"""Settings that contradict themselves: each is a load-time warning naming both entries and the fix.

- A preset whose configuration file the jail hides: `@npm` read the registry from `~/.npmrc`, `denyRead` hides
  it, so npm inside uses its default registry, which the preset did not allow.
- An `allowWrite` inside a `denyRead` region with no `allowRead` for it: netjail makes it readable and
  writable (it is bound), srt would leave it hidden; say which is meant.
- A credential file in `mode: "mask"` that `denyRead` also names: the command sees it masked (the masked copy is
  bound over the hidden file), not hidden; say which is meant.

These read `denyRead` as the file wrote it: credential files are merged into it later, by design, so a masked file
is not its own contradiction.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from netjail.settings.models import Settings
from netjail.settings.presets import preset_sources


def _absolute(entry: str, home: Path, cwd: Path) -> Path:
    path = Path(entry.replace("~", str(home), 1) if entry.startswith("~") else entry)
    return Path(os.path.normpath(path if path.is_absolute() else cwd / path))


def _covering(path: Path, entries: Iterable[str], home: Path, cwd: Path) -> str | None:
    """The first entry that names `path` or one of its parents."""
    for entry in entries:
        region = _absolute(entry, home, cwd)
        if path == region or region in path.parents:
            return entry
    return None


def contradictions(
    settings: Settings,
    presets: Iterable[str],
    environ: Mapping[str, str] = os.environ,
    *,
    cwd: Path | None = None,
    written_deny_read: list[str] | None = None,
) -> list[str]:
    """`written_deny_read`: filesystem.denyRead as the file holds it (the model's has the credential files)."""
    cwd = cwd or Path.cwd()
    home = Path(environ.get("HOME") or Path.home())
    fs = settings.filesystem
    deny_read = [str(e) for e in (fs.deny_read if written_deny_read is None else written_deny_read)]
    allow_read = [str(e) for e in fs.allow_read]
    masked = {
        _absolute(f.path, home, cwd): index
        for index, f in enumerate(settings.credentials.files)
        if f.mode == "mask"
    }
    warnings: list[str] = []
    for preset in presets:
        for source in preset_sources(preset, environ, cwd=cwd):
            if source.absolute() in masked:
                continue  # the tool reads it, with placeholders: what the warning below asks for
            hidden = _covering(source.absolute(), deny_read, home, cwd)
            if hidden is not None and _covering(source.absolute(), allow_read, home, cwd) is None:
                warnings.append(
                    f"network.allowedDomains: {preset} allowed the hosts {source} names, but filesystem.denyRead "
                    f"{hidden!r} hides that file: inside the jail the tool uses its default instead. Fix: mask "
                    f'the file rather than hide it (credentials.files: [{{"path": "{source}", "mode": "mask"}}]), '
                    "or allow the default host too"
                )
    for index, entry in enumerate(str(e) for e in fs.allow_write):
        path = _absolute(entry, home, cwd)
        hidden = _covering(path, deny_read, home, cwd)
        if hidden is not None and hidden != entry and _covering(path, allow_read, home, cwd) is None:
            warnings.append(
                f"filesystem.allowWrite[{index}]: {entry!r} lies inside filesystem.denyRead {hidden!r}: netjail "
                "makes it readable and writable (srt would keep it hidden). Fix: add it to filesystem.allowRead "
                "to say so"
            )
    for index, entry in enumerate(deny_read):
        if (file := masked.get(_absolute(entry, home, cwd))) is not None:
            warnings.append(
                f"filesystem.denyRead[{index}]: {entry!r} hides the file credentials.files[{file}] masks: the "
                "command sees it with placeholders in place of the secret, not hidden. Fix: remove it from "
                'denyRead to say the mask is meant, or use mode "deny" for the credential to keep it hidden'
            )
    return warnings
