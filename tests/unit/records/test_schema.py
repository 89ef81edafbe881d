"""The record schema (netjail/records/schema.py) is the contract: docs/records.md documents exactly its fields
and codes, the code writes only its codes, and the readers ask only for its fields."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from netjail.records import schema

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "records.md"

RECORDS = {
    "run_start": schema.RunStart,
    "flow_start": schema.FlowStart,
    "flow": schema.FlowRecord,
    "dns": schema.DnsRecord,
    "dropped": schema.DroppedRecord,
    "refused_write": schema.RefusedWrite,
    "quarantine": schema.QuarantineRecord,
    "policy_update": schema.PolicyUpdate,
    "ask": schema.AskRecord,
    "run_end": schema.RunEnd,
}
# Every record has these; the doc says so once, above the tables.
COMMON = {"event", "ts"}
# (event, field) -> the Literal whose values the field's row lists.
CODES = {
    ("run_start", "settings_origin"): schema.SettingsOrigin,
    ("run_start", "capture_mode"): schema.CaptureMode,
    ("run_start", "network_mode"): schema.NetworkMode,
    ("flow", "verdict"): schema.AllowOrDeny,
    ("flow", "reason"): schema.FlowReason,
    ("flow", "error_kind"): schema.ErrorKind,
    ("flow", "flags"): schema.FlagKind,
    ("dns", "verdict"): schema.AllowOrDeny,
    ("dns", "reason"): schema.PolicyReason,
    ("run_end", "reason"): schema.EndReason,
    ("quarantine", "file_type"): schema.FileType,
    ("policy_update", "source"): schema.UpdateSource,
    ("policy_update", "result"): schema.UpdateResult,
    ("ask", "answer"): schema.AskAnswer,
    ("ask", "decided_by"): schema.AskDecider,
}
# (event, field) -> the nested shape whose keys the field's row names.
NESTED = {
    ("flow", "websocket"): schema.WebSocketCounts,
    ("flow", "flags"): schema.Flag,
    ("run_end", "counts"): schema.RunCounts,
    ("flow", "truncated"): schema.Truncated,
}


def doc_tables(text: str) -> dict[str, dict[str, str]]:
    """event -> {field: the rest of its table row}, from the `## \\`event\\`` sections' tables."""
    tables: dict[str, dict[str, str]] = {}
    event = None
    for line in text.splitlines():
        if heading := re.fullmatch(r"## `(\w+)`", line.strip()):
            event = heading.group(1)
            tables[event] = {}
        elif line.startswith("## "):
            event = None
        elif event and line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|", 1)]
            if len(cells) != 2 or set(cells[0]) <= set("-") or cells[0] == "field":
                continue
            for name in re.findall(r"`(\w+)`", cells[0]):
                tables[event][name] = cells[1]
    return tables


def codes_in(text: str) -> set[str]:
    """The backticked lowercase words of a table cell (`allowed`, `proxy-variables`)."""
    return set(re.findall(r"`([a-z][a-z0-9_-]*)`", text))


def literal_values(literal: Any) -> set[str]:
    return set(get_args(literal))


@pytest.fixture(scope="module")
def tables() -> dict[str, dict[str, str]]:
    return doc_tables(DOC.read_text(encoding="utf-8"))


def test_the_doc_has_a_table_for_every_record(tables: dict[str, dict[str, str]]) -> None:
    assert set(tables) == set(RECORDS)


@pytest.mark.parametrize("event", RECORDS)
def test_doc_fields_equal_the_typeddict_fields(tables: dict[str, dict[str, str]], event: str) -> None:
    fields = set(get_type_hints(RECORDS[event]))
    documented = set(tables[event]) | COMMON
    assert documented - fields == set(), f"docs/records.md lists fields {event} does not have"
    assert fields - documented == set(), f"fields of {event} that docs/records.md does not list"


def test_every_record_has_event_and_ts() -> None:
    for event, record in RECORDS.items():
        hints = get_type_hints(record)
        assert COMMON <= set(hints) <= set(record.__required_keys__) | set(record.__optional_keys__)
        assert set(record.__required_keys__) >= COMMON
        assert get_args(hints["event"]) == (event,)


@pytest.mark.parametrize(("event", "field"), CODES)
def test_doc_codes_equal_the_literal(tables: dict[str, dict[str, str]], event: str, field: str) -> None:
    assert codes_in(tables[event][field]) == literal_values(CODES[event, field])


@pytest.mark.parametrize(("event", "field"), NESTED)
def test_doc_names_the_keys_of_nested_shapes(
    tables: dict[str, dict[str, str]], event: str, field: str
) -> None:
    row = tables[event][field]
    for key in get_type_hints(NESTED[event, field]):
        assert re.search(rf"\b{key}\b", row), f"{event}.{field}: {key} is not in the doc's row"


def test_doc_parser_reads_tables_and_multi_field_rows() -> None:
    text = "## `x`\n\n| field | |\n|---|---|\n| `a`, `b` | one `code` or `other` |\n\n## Other\n| `c` | |\n"
    assert doc_tables(text) == {"x": {"a": "one `code` or `other`", "b": "one `code` or `other`"}}
    assert codes_in(doc_tables(text)["x"]["a"]) == {"code", "other"}


# ---------------------------------------------------------------------------------------------------------
# The codes the code writes
# ---------------------------------------------------------------------------------------------------------


def test_policy_reasons_are_the_schemas() -> None:
    from netjail.policy.decision import Reason

    assert literal_values(Reason) == literal_values(schema.PolicyReason)
    assert literal_values(schema.PolicyReason) <= literal_values(schema.FlowReason)


def _reason_constants(tree: ast.AST) -> set[str]:
    """String constants a module writes as a reason: `"reason": "x"` in a dict, `reason = "x"` (also through a
    conditional), `deny("x", …)`, and `Verdict(verdict, "x", …)`."""

    def strings(node: ast.AST | None) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            return strings(node.body) | strings(node.orelse)
        return set()

    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "reason":
                    found |= strings(value)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "reason" for t in targets):
                found |= strings(node.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "deny" and node.args:
                found |= strings(node.args[0])
            elif node.func.id == "Verdict" and len(node.args) > 1:
                found |= strings(node.args[1])
    return found


def test_the_code_writes_only_the_schemas_reasons() -> None:
    sources = [
        *sorted((REPO / "addons").glob("*.py")),
        *sorted((REPO / "netjail" / "policy").glob("*.py")),
        *sorted((REPO / "netjail" / "proxy").glob("*.py")),
    ]
    written: dict[str, set[str]] = {}
    for path in sources:
        for code in _reason_constants(ast.parse(path.read_text(encoding="utf-8"))):
            written.setdefault(code, set()).add(path.relative_to(REPO).as_posix())
    flow_reasons = literal_values(schema.FlowReason)
    unknown = {code: where for code, where in written.items() if code not in flow_reasons}
    assert unknown == {}
    # and the recorder's own codes are all found, so the scan does look where reasons are written
    assert {"upstream_error", "client_tls_failed", "client_aborted", "proxy_auth"} <= set(written)


@pytest.mark.parametrize("module", ["runner", "supervise", "standalone"])
def test_the_supervisor_writes_only_the_schemas_end_reasons(module: str) -> None:
    tree = ast.parse((REPO / "netjail" / "run" / f"{module}.py").read_text(encoding="utf-8"))
    reasons = _reason_constants(tree)
    for node in ast.walk(tree):  # Outcome(status, "reason", …) and RunFailed(message, reason="…")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Outcome":
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                reasons.add(node.args[1].value)
        if isinstance(node, ast.keyword) and node.arg == "reason" and isinstance(node.value, ast.Constant):
            reasons.add(node.value.value)
    assert reasons and reasons <= literal_values(schema.EndReason)


# ---------------------------------------------------------------------------------------------------------
# The fields the readers ask for
# ---------------------------------------------------------------------------------------------------------

# mypy checks `record["key"]` against the TypedDict, but not `record.get("key")` (it answers `object` for a
# key it does not know), and the readers use `.get` because a record on disk may come from another writer. So
# the literal keys read from a record are checked here: the names the readers give a record.
RECORD_NAMES = {"record", "start", "end", "first", "last", "start_record", "found"}
READERS = [*sorted((REPO / "netjail" / "inspect").glob("*.py")), REPO / "netjail" / "records" / "runs.py"]


def _record_keys_read(tree: ast.AST) -> set[tuple[int, str]]:
    keys: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        receiver, key = None, None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            receiver, key = node.value, node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            receiver, key = node.func.value, node.args[0].value
        if isinstance(receiver, ast.Name) and receiver.id in RECORD_NAMES and isinstance(key, str):
            keys.add((node.lineno, key))
    return keys


def test_readers_ask_only_for_fields_a_record_has() -> None:
    fields = set().union(*(get_type_hints(record) for record in RECORDS.values()))
    unknown = []
    for path in READERS:
        for line, key in sorted(_record_keys_read(ast.parse(path.read_text(encoding="utf-8")))):
            if key not in fields:
                unknown.append(f"{path.relative_to(REPO)}:{line} reads {key!r}")
    assert unknown == []


def test_the_key_check_finds_a_misspelling() -> None:
    tree = ast.parse('def f(record):\n    return record.get("hots"), record["verdict"]\n')
    assert _record_keys_read(tree) == {(2, "hots"), (2, "verdict")}
