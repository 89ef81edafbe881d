"""Settings files may hold `//` and `/* */` comments (JSONC): they are blanked outside strings, so the file loads
as the same JSON and an error's line and column still point into the file as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from netjail.settings import SettingsError, load_settings
from netjail.settings.load import strip_comments

COMMENTED = """\
// netjail settings for the build
{
  "network": {
    /* the registry, and
       its file host */
    "allowedDomains": ["pypi-mirror.corp.example", "files.corp.example"], // pip
    "deniedDomains": ["gist.github.com"],
    "deniedDomainReasons": {"gist.github.com": "a paste site: see https://wiki.test/*egress*/ // not a comment"}
  },
  "filesystem": {"denyRead": ["~/.ssh"], "allowWrite": ["."], "denyWrite": []}
}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.jsonc"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1} // end', '{"a": 1}       '),
        ('{"a": /* one */ 1}', '{"a":           1}'),
        ('{"a": "//kept", "b": "/* kept */"}', '{"a": "//kept", "b": "/* kept */"}'),
        (
            '{"a": "\\\\"} // after an escaped backslash',
            '{"a": "\\\\"}' + " " * len(" // after an escaped backslash"),
        ),
        ('{"a": "say \\"// no\\""}', '{"a": "say \\"// no\\""}'),
        ("/* a\nb */{}", "    \n    {}"),
        ("{}\r\n// x\r\n", "{}\r\n    \r\n"),
        ('{"url": "https://example.test/"}', '{"url": "https://example.test/"}'),
    ],
)
def test_comments_become_blanks_outside_strings(text: str, expected: str) -> None:
    assert strip_comments("f", text) == expected
    assert len(strip_comments("f", text)) == len(text)


def test_a_commented_file_loads_as_the_same_settings(tmp_path: Path) -> None:
    loaded = load_settings(write(tmp_path, COMMENTED))
    network = loaded.settings.network
    assert [p.source for p in network.allowed_domains] == ["pypi-mirror.corp.example", "files.corp.example"]
    assert network.denied_domain_reasons == {
        "gist.github.com": "a paste site: see https://wiki.test/*egress*/ // not a comment"
    }


def test_an_error_after_comments_keeps_its_line_and_column(tmp_path: Path) -> None:
    text = '/* one\n   two */ {\n  // three\n  "network": {,}\n}\n'
    with pytest.raises(SettingsError) as caught:
        load_settings(write(tmp_path, text))
    assert "invalid JSON at line 4, column 15" in str(caught.value)


def test_an_unclosed_block_comment_is_named_with_its_position(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(write(tmp_path, '{\n  "network": {} /* oops\n}\n'))
    assert "a /* comment at line 2, column 17 is never closed. Fix: close it with */" in str(caught.value)


def test_a_file_of_only_comments_is_empty(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(write(tmp_path, "// nothing yet\n/* at all */\n"))
    assert "the file is empty" in str(caught.value)


def test_trailing_commas_stay_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(write(tmp_path, '{"network": {"allowedDomains": [],}, // x\n}'))
    assert "invalid JSON at line 1" in str(caught.value)
