"""What runs took out of the tree (their `quarantine` records), for `netjail quarantine list / show / restore`.

An item is named `RUN#N`: the Nth quarantine record of the run. Restoring puts the kept copy back where it was
(netjail.jail.quarantine.restore_entry) and appends a line to the run's `restored.jsonl`, so the list shows it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netjail.records.log import utc_timestamp
from netjail.records.read import iter_records
from netjail.records.rundir import RunDir, runs_dir
from netjail.records.runs import RunNotFound, resolve_run, run_dirs
from netjail.utils.text import safe_text

SHOWN_BYTES = 4096  # of a quarantined file's content, by `show`
WHY = {
    ".git": "git would run it (a hook, a hook path, an executing config key, a redirection to another git dir)",
    ".claude": "an agent would run its hooks at its next session",
    ".github": "CI would run it at the next push",
    ".vscode": "the editor would run its tasks or settings when the folder is opened",
    ".envrc": "direnv would run it when a shell enters the directory",
}


class ItemNotFound(LookupError):
    pass


@dataclass
class Item:
    run: RunDir
    number: int  # 1-based, in the order of the run's quarantine records
    record: dict[str, Any]
    restored: dict[str, Any] | None

    @property
    def name(self) -> str:
        return f"{self.run.run_id}#{self.number}"

    @property
    def kept(self) -> Path | None:
        moved = self.record.get("moved_to")
        return Path(moved) if moved else None

    @property
    def state(self) -> str:
        if self.restored:
            return "restored"
        action = str(self.record.get("action") or "moved")
        if action in ("moved", "sanitised") and (self.kept is None or not self.kept.exists()):
            return "kept copy gone"
        return action

    def why(self) -> str:
        parts = Path(str(self.record.get("path", ""))).parts
        for marker, reason in WHY.items():
            if marker in parts:
                return reason
        return "a host tool would run it later (docs/security.md lists the protected names)"

    def as_json(self) -> dict[str, Any]:
        return {"item": self.name, "state": self.state, "why": self.why(), "record": self.record,
                "restored": self.restored}  # fmt: skip


def run_items(run: RunDir) -> list[Item]:
    restored: dict[object, dict[str, Any]] = {
        r.get("item"): dict(r) for r in iter_records(run.path / "restored.jsonl")
    }
    items: list[Item] = []
    for record in iter_records(run.flows_jsonl):
        if record.get("event") == "quarantine":
            number = len(items) + 1
            items.append(Item(run, number, dict(record), restored.get(f"{run.run_id}#{number}")))
    return items


def all_items(root: Path | None = None) -> Iterator[Item]:
    """Every run's items, newest run first."""
    for path in reversed(run_dirs(root or runs_dir())):
        yield from run_items(RunDir(path))


def find_item(spec: str) -> Item:
    """`RUN#N` (a run id, a unique start of one, or a path), or `N` in the latest run that has items."""
    run_spec, _, number = spec.rpartition("#")
    try:
        n = int(number)
    except ValueError:
        raise ItemNotFound(
            f"{spec!r} is not an item. Fix: use RUN#N or N, as `netjail quarantine list` shows"
        ) from None
    try:
        runs = [resolve_run(run_spec)] if run_spec else [i.run for i in all_items()][:1]
    except RunNotFound as e:
        raise ItemNotFound(str(e)) from None
    if not runs:
        raise ItemNotFound("no run has quarantined anything")
    items = run_items(runs[0])
    if not 1 <= n <= len(items):
        raise ItemNotFound(f"run {runs[0].run_id} has {len(items)} quarantined item(s), not #{n}")
    return items[n - 1]


def show(item: Item) -> str:
    record = item.record
    lines = [
        f"{item.name}: {safe_text(record.get('path'))}",
        f"  taken: {record.get('ts')}{' while the command ran' if record.get('during_run') else ' at the end of the run'}"
        f" ({record.get('action') or 'moved'}, a {record.get('file_type') or 'file'})",
        f"  why: {item.why()}",
        f"  state: {item.state}"
        + (f" (kept at {safe_text(item.kept)})" if item.kept and item.kept.exists() else ""),
    ]
    if record.get("dropped"):
        lines.append("  the config entries removed (they would run commands):")
        lines += [f"    {safe_text(entry)}" for entry in record["dropped"]]
    kept = item.kept
    if kept is not None and kept.is_dir() and not kept.is_symlink():
        entries = sorted(p.relative_to(kept) for p in kept.rglob("*"))
        lines.append(f"  holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}:")
        lines += [f"    {safe_text(e)}" for e in entries[:50]]
    elif kept is not None and kept.is_file() and not kept.is_symlink():
        data = kept.read_bytes()[:SHOWN_BYTES]
        lines.append(
            f"  content ({kept.stat().st_size} bytes{', start shown' if kept.stat().st_size > SHOWN_BYTES else ''}):"
        )
        lines += [f"    {safe_text(line)}" for line in data.decode("utf-8", "replace").splitlines()]
    elif kept is not None and kept.is_symlink():
        lines.append(f"  a link to {safe_text(kept.readlink())}")
    return "\n".join(lines) + "\n"


def restore(item: Item, to: Path | None = None) -> Path:
    """Put the item back (or at `to`); record it in the run's restored.jsonl. Raises OSError / ItemNotFound."""
    from netjail.jail.quarantine import restore_entry

    if item.restored:
        raise ItemNotFound(f"{item.name} was restored already, to {item.restored.get('to')}")
    kept = item.kept
    if item.record.get("action") == "sanitised" and to is None:
        raise ItemNotFound(
            f"{item.name} is a git config that netjail rewrote in place: {item.record['path']} holds its safe keys, "
            f"{kept} the original. Fix: compare them (git config --file {kept} --list) and copy what you need, "
            "or restore it elsewhere with --to FILE"
        )
    if item.record.get("action") not in (None, "moved", "sanitised") or kept is None or not kept.exists():
        raise ItemNotFound(f"{item.name} has no kept copy to restore ({item.state})")
    target = (to or Path(str(item.record["path"]))).absolute()
    restore_entry(kept, target)
    line = {"event": "restored", "ts": utc_timestamp(), "item": item.name, "path": item.record["path"],
            "to": str(target)}  # fmt: skip
    with (item.run.path / "restored.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=True) + "\n")
    return target
