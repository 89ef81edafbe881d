"""The docs cite tests as evidence; every cited test must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# In docs/security.md's catalogue, "I" is tests/integration/ and "S" tests/security/; `::name` continues the
# file named last in the same cell.
PREFIXES = {"I": "tests/integration", "S": "tests/security"}
CITATION = re.compile(r"(?:\b([IS]) )?`((?:tests/[\w/]+/)?[\w]+\.py)?(?:::(\w+))?`")


def cited_tests(markdown: str) -> list[tuple[str, str | None]]:
    """(test file relative to the repository, test name or None) for every citation in a table row."""
    cited: list[tuple[str, str | None]] = []
    for line in markdown.splitlines():
        if not line.startswith("|"):
            continue
        for cell in line.split("|")[2:]:
            current: str | None = None
            for prefix, file, name in CITATION.findall(cell):
                if file:
                    current = file if file.startswith("tests/") else f"{PREFIXES.get(prefix, 'tests')}/{file}"
                if current and (file or name):
                    cited.append((current, name or None))
    return cited


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_cited_in_the_security_catalogue_exists() -> None:
    cited = cited_tests((REPO / "docs" / "security.md").read_text(encoding="utf-8"))
    assert (
        len(cited) > 40
    )  # the catalogue cites its evidence; a parsing slip must not pass as "nothing cited"
    missing = []
    for file, name in cited:
        path = REPO / file
        if not path.is_file():
            missing.append(file)
        elif name and name not in defined_functions(path):
            missing.append(f"{file}::{name}")
    assert missing == []


def test_the_citation_parser_follows_the_catalogue_shorthand() -> None:
    row = "| X1 thing | I `test_a.py::test_one`, `::test_two`; S `test_b.py::test_three`; unit `tests/unit/c/test_c.py` |"
    assert cited_tests(row) == [
        ("tests/integration/test_a.py", "test_one"),
        ("tests/integration/test_a.py", "test_two"),
        ("tests/security/test_b.py", "test_three"),
        ("tests/unit/c/test_c.py", None),
    ]
