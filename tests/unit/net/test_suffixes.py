"""netjail.net.suffixes: registrable domains and public suffixes from the Public Suffix List, as the burst counter,
`netjail learn` and the settings' wildcard check read them."""

import subprocess
import sys
from encodings import idna

import pytest

from netjail.net import suffixes
from netjail.net.suffixes import is_public_suffix, is_shared_parent, registrable_domain

# host, registrable domain (registries' and hosting providers' suffixes), registrable domain (registries' only)
REGISTRABLE = [
    ("a.b.example.com", "example.com", "example.com"),
    ("example.com", "example.com", "example.com"),
    ("www.example.co.uk", "example.co.uk", "example.co.uk"),
    ("co.uk", None, None),
    ("com", None, None),
    ("me.github.io", "me.github.io", "github.io"),
    ("x.me.github.io", "me.github.io", "github.io"),
    ("github.io", None, "github.io"),
    ("bucket.s3.amazonaws.com", "bucket.s3.amazonaws.com", "amazonaws.com"),
    ("sts.amazonaws.com", "amazonaws.com", "amazonaws.com"),
    ("x.wordpress.com", "x.wordpress.com", "wordpress.com"),  # shared, though the list does not say so
    ("city.kobe.jp", "city.kobe.jp", "city.kobe.jp"),  # an exception to *.kobe.jp
    ("a.b.kobe.jp", "a.b.kobe.jp", "a.b.kobe.jp"),
    ("b.kobe.jp", None, None),
    ("tunnel.test", "tunnel.test", "tunnel.test"),  # a top-level domain the list does not know is a suffix
    ("a.tunnel.test", "tunnel.test", "tunnel.test"),
    # IP literals
    ("192.0.2.1", None, None),
    ("10.0.0.1", None, None),
    ("::1", None, None),
    ("2001:db8::1", None, None),
    ("[2001:db8::1]", None, None),
    ("example.123", None, None),
    # single labels
    ("localhost", None, None),
    ("intranet", None, None),
    # spelling: case, trailing dot, malformed
    ("WWW.Example.COM", "example.com", "example.com"),
    ("www.example.com.", "example.com", "example.com"),
    ("www.example.com..", None, None),
    ("a..example.com", None, None),
    ("", None, None),
    (".", None, None),
    # IDN, as written and in punycode (as netjail normalises names)
    ("www.bücher.de", "bücher.de", "bücher.de"),
    ("www.xn--bcher-kva.de", "xn--bcher-kva.de", "xn--bcher-kva.de"),
    ("a.個人.香港", "a.個人.香港", "a.個人.香港"),
    ("a.xn--gmqw5a.xn--j6w193g", "a.xn--gmqw5a.xn--j6w193g", "a.xn--gmqw5a.xn--j6w193g"),
    ("xn--gmqw5a.xn--j6w193g", None, None),
]


@pytest.mark.parametrize(("host", "registrable", "registered_with_registry"), REGISTRABLE)
def test_registrable_domain(host: str, registrable: str | None, registered_with_registry: str | None) -> None:
    assert registrable_domain(host) == registrable
    assert registrable_domain(host, private=False) == registered_with_registry


# name, public suffix (any), public suffix (registries' only), shared parent (others hold names below it)
SUFFIXES = [
    ("com", True, True, True),
    ("co.uk", True, True, True),
    ("github.io", True, False, True),
    ("GitHub.IO.", True, False, True),
    ("amazonaws.com", False, False, True),  # s3.amazonaws.com is a suffix below it
    ("s3.amazonaws.com", True, False, True),
    ("windows.net", False, False, True),  # blob.core.windows.net
    ("wordpress.com", True, False, True),  # not in the list: netjail's own addition
    ("example.com", False, False, False),
    ("github.com", False, False, False),
    ("example.co.uk", False, False, False),
    ("xn--j6w193g", True, True, True),  # 香港
    ("192.0.2.1", False, False, False),
    ("", False, False, False),
]


@pytest.mark.parametrize(("name", "public", "registry", "shared"), SUFFIXES)
def test_public_suffixes_and_shared_parents(name: str, public: bool, registry: bool, shared: bool) -> None:
    assert is_public_suffix(name) is public
    assert is_public_suffix(name, private=False) is registry
    assert is_shared_parent(name) is shared


def test_punycode_of_the_shipped_rules_is_what_idna_2003_makes_of_them() -> None:
    rules = suffixes._Rules()
    written = [r.removeprefix("!") for r in (*rules.icann, *rules.private) if not r.isascii()]
    assert len(written) > 100
    for rule in written:
        expected = ".".join(idna.ToASCII(label).decode("ascii") for label in rule.split("."))
        assert suffixes.punycode(rule) == expected, rule


def test_the_list_is_read_on_first_use_only() -> None:
    code = (
        "import sys, netjail.net.domains, netjail.detect.flags;"
        "assert 'publicsuffixlist' not in sys.modules;"
        "from netjail.net.suffixes import registrable_domain;"
        "assert registrable_domain('a.example.com') == 'example.com';"
        "assert 'publicsuffixlist' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
