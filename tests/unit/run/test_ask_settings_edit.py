"""Ask mode's "always" (netjail/run/ask.py): the entry is appended to network.allowedDomains of a JSONC file and
every other byte — comments, layout — is kept; the result loads as the same settings plus the entry."""

from __future__ import annotations

import json

import pytest

from netjail.run.ask import NoAllowedDomains, with_allowed_domain
from netjail.settings.load import strip_comments

CASES = [
    ('{"network": {"allowedDomains": [], "deniedDomains": []}}',
     '{"network": {"allowedDomains": ["new.test:443"], "deniedDomains": []}}'),
    ('{"network": {"allowedDomains": ["a.test"], "deniedDomains": []}}',
     '{"network": {"allowedDomains": ["a.test", "new.test:443"], "deniedDomains": []}}'),
    ('{\n  "network": {\n    "allowedDomains": [\n      "a.test", // why a\n      "b.test"\n    ]\n  }\n}',
     '{\n  "network": {\n    "allowedDomains": [\n      "a.test", // why a\n      "b.test",\n      "new.test:443"\n    ]\n  }\n}'),
    # a comment that looks like the key, a string holding brackets, another allowedDomains deeper down
    ('// "allowedDomains": [\n{"x": {"allowedDomains": ["no"]}, "network": {"deniedDomains": ["]["],'
     ' /* ] */ "allowedDomains": ["a.test" /* last */ ]}}',
     '// "allowedDomains": [\n{"x": {"allowedDomains": ["no"]}, "network": {"deniedDomains": ["]["],'
     ' /* ] */ "allowedDomains": ["a.test", "new.test:443" /* last */ ]}}'),
]  # fmt: skip


@pytest.mark.parametrize(("before", "after"), CASES)
def test_the_entry_is_added_and_the_rest_kept(before: str, after: str) -> None:
    assert with_allowed_domain(before, "new.test:443") == after
    parsed = json.loads(strip_comments("f", after))
    assert parsed["network"]["allowedDomains"][-1] == "new.test:443"


def test_an_entry_already_there_changes_nothing() -> None:
    text = '{"network": {"allowedDomains": ["new.test:443"]}}'
    assert with_allowed_domain(text, "new.test:443") == text


def test_a_file_without_the_array_is_refused() -> None:
    with pytest.raises(NoAllowedDomains):
        with_allowed_domain('{"network": {}}', "new.test:443")
