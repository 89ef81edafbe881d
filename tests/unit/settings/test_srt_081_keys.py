"""The keys srt 0.0.81 added, one verdict each as the settings load them (what the honoured ones do at run time
is tested through the real proxy and jail in tests/integration/test_srt_keys_at_run_time.py), and the warning
for a pin into a local range whose entry has no port."""

from __future__ import annotations

from pathlib import Path

import pytest

from netjail.settings import SRT_KEYS

from .settings_files import case, load, minimal, refused, with_

VERDICTS = {v.path: v.verdict for v in SRT_KEYS}


def test_allow_nested_user_namespaces_is_refused_when_true(tmp_path: Path) -> None:
    assert VERDICTS["allowNestedUserNamespaces"] == "refused"
    error = refused(tmp_path, {**minimal(), "allowNestedUserNamespaces": True})
    assert error.field == "allowNestedUserNamespaces" and "read-only binds" in error.problem
    assert load(tmp_path, {**minimal(), "allowNestedUserNamespaces": False}).warnings == ()


@pytest.mark.parametrize(
    ("path", "value", "warning"),
    [
        (
            "network.allowPlaintextHeaderSet",
            True,
            "network.allowPlaintextHeaderSet: ignored: netjail's proxy sets no",
        ),
        ("network.tlsTerminate.handshakeTimeoutMs", 5000, "network.tlsTerminate.handshakeTimeoutMs: ignored"),
    ],
)
def test_warned_keys_say_so_once_and_are_silent_when_empty(
    tmp_path: Path, path: str, value: object, warning: str
) -> None:
    assert VERDICTS[path] == "warned"
    (line,) = load(tmp_path, case(path, value)).warnings
    assert line.startswith(warning)
    if value is True:
        assert load(tmp_path, case(path, False)).warnings == ()


@pytest.mark.parametrize(
    ("path", "value", "attribute"),
    [
        ("network.stripResponseHeaders", ["Set-Cookie", "x_trace.id"], "strip_response_headers"),
        ("network.refuseOpaqueTunnels", True, "refuse_opaque_tunnels"),
        ("network.requireHostMatch", False, "require_host_match"),
        ("network.ambiguousRequestTarget", "normalize", "ambiguous_request_target"),
    ],
)
def test_honoured_network_keys_load_silently(
    tmp_path: Path, path: str, value: object, attribute: str
) -> None:
    assert VERDICTS[path] == "honoured"
    loaded = load(tmp_path, case(path, value))
    assert loaded.warnings == () and getattr(loaded.settings.network, attribute) == value


def test_honoured_tls_terminate_max_tunnels_is_bounded_as_in_srt(tmp_path: Path) -> None:
    assert VERDICTS["network.tlsTerminate.maxTunnels"] == "honoured"
    assert (
        load(
            tmp_path, case("network.tlsTerminate", {"maxTunnels": 2})
        ).settings.network.tls_terminate.max_tunnels
        == 2
    )
    assert (
        refused(tmp_path, case("network.tlsTerminate", {"maxTunnels": 0})).field
        == "network.tlsTerminate.maxTunnels"
    )
    assert (
        refused(tmp_path, case("network.ambiguousRequestTarget", "fix")).field
        == "network.ambiguousRequestTarget"
    )


def test_honoured_literal_path_entries(tmp_path: Path) -> None:
    for key in ("denyRead", "allowRead", "allowWrite", "denyWrite"):
        assert VERDICTS[f"filesystem.{key}[].path"] == VERDICTS[f"filesystem.{key}[].literal"] == "honoured"
    data = with_(minimal(), "filesystem.denyRead", ["*.pem", {"path": "~/a*b/", "literal": True}])
    loaded = load(tmp_path, data)  # a literal entry ending in '/' is no inert glob
    literal = loaded.settings.filesystem.deny_read[1]
    assert literal == "~/a*b/" and getattr(literal, "literal", False)
    assert not getattr(loaded.settings.filesystem.deny_read[0], "literal", False)
    assert '{\n        "path": "~/a*b/",\n        "literal": true\n      }' in loaded.effective_json()
    for bad, problem in (
        ({"path": "x"}, 'exactly {"path": ..., "literal": true}'),
        ({"path": "x", "literal": False}, 'exactly {"path": ..., "literal": true}'),
        ({"path": "x", "literal": True, "glob": 1}, 'exactly {"path": ..., "literal": true}'),
        ({"path": 3, "literal": True}, "path must be a string"),
        (3, "must be a string or a literal path object"),
    ):
        error = refused(tmp_path, with_(minimal(), "filesystem.denyWrite", [bad]))
        assert error.field == "filesystem.denyWrite[0]" and problem in error.problem, error


def test_a_pin_into_a_local_range_without_a_port_is_warned(tmp_path: Path) -> None:
    data = case("network.allowedDomains", ["app.test", "*.dev.test", "api.test:8080", "public.test"])
    data["network"]["hosts"] = {
        "app.test": "127.0.0.1",
        "x.dev.test": "10.1.2.3",
        "api.test": "127.0.0.1",
        "public.test": "192.0.2.10",
    }
    warnings = load(tmp_path, data).warnings
    assert warnings == (
        'network.hosts "app.test": app.test is pinned to 127.0.0.1 (loopback) and allowedDomains entry '
        "'app.test' has no port, so every port of that local address is reachable. Fix: give the entry the "
        "port the service uses, e.g. 'app.test:443'",
        'network.hosts "x.dev.test": x.dev.test is pinned to 10.1.2.3 (private) and allowedDomains entry '
        "'*.dev.test' has no port, so every port of that local address is reachable. Fix: give the entry the "
        "port the service uses, e.g. 'x.dev.test:443'",
    )
