"""Settings: srt files load unchanged, every srt key has its verdict, and every bad file is refused with
one message naming the file, the field (as a JSON path), the problem and the fix."""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from netjail.settings import (
    BUNDLED_DEFAULT,
    NETJAIL_KEYS,
    SRT_KEYS,
    FilesystemSettings,
    LoadedSettings,
    NetworkSettings,
    Settings,
    SettingsError,
    find_settings_path,
    json_schema,
    load_settings,
    presets,
)

REPO = Path(__file__).resolve().parents[3]
EVERY_KEY = REPO / "tests" / "data" / "srt-every-key.json"
SRT_DIR = Path(os.environ.get("NETJAIL_SRT_DIR", "/tmp/srt/node_modules/@anthropic-ai/sandbox-runtime"))
NODE = shutil.which("node") or "node"
needs_srt = pytest.mark.skipif(
    shutil.which(NODE) is None or not (SRT_DIR / "dist" / "sandbox" / "sandbox-config.js").is_file(),
    reason="node and srt 0.0.78 (NETJAIL_SRT_DIR) are needed to compare with srt itself",
)
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def minimal() -> dict[str, Any]:
    return {
        "network": {"allowedDomains": [], "deniedDomains": []},
        "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []},
    }


def save(tmp_path: Path, data: Any, name: str = "settings.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def load(tmp_path: Path, data: Any, **kwargs: Any) -> LoadedSettings:
    return load_settings(save(tmp_path, data), **kwargs)


def refused(tmp_path: Path, data: Any) -> SettingsError:
    path = save(tmp_path, data)
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    error = info.value
    assert str(error) == f"{path}: {error.field}: {error.problem}. Fix: {error.fix}"
    assert "\n" not in str(error)
    return error


def with_(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `data` with the dotted key set."""
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
    return data


def json_paths(value: Any, prefix: str = "") -> set[str]:
    """Key paths of a JSON document in the table's notation (arrays of objects as "[]")."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            found |= json_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                found |= json_paths(item, f"{prefix}[]")
    return found


def srt_paths(data: dict[str, Any]) -> set[str]:
    """Drop the free-form parts: record keys of ignoreViolations and deniedDomainReasons."""
    return {
        p for p in json_paths(data) if not re.match(r"(ignoreViolations|network\.deniedDomainReasons)\.", p)
    }


# -- the bundled files ---------------------------------------------------------------------------------


def test_bundled_default_denies_all_network() -> None:
    loaded = load_settings(BUNDLED_DEFAULT, "bundled")
    assert loaded.origin == "bundled"
    assert loaded.settings.network.allowed_domains == []
    assert loaded.settings.filesystem.allow_write == ["."]
    assert "~/.ssh" in loaded.settings.filesystem.deny_read
    assert loaded.warnings == () and loaded.expansions == {}


def test_example_expands_pip() -> None:
    loaded = load_settings(REPO / "configs" / "example.json")
    hosts = loaded.expansions["@pip"]
    sources = [p.source for p in loaded.settings.network.allowed_domains]
    assert hosts and sources == [*hosts, "example.com", "*.example.org"]
    assert "@pip" not in loaded.effective_json()


def test_no_registry_host_in_repository_files() -> None:
    from pip._internal.models.index import PyPI

    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    paths = [REPO / name for name in tracked.decode().split("\0") if name] or [
        *REPO.joinpath("configs").iterdir()
    ]
    for path in paths:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        assert PyPI.netloc not in text and PyPI.file_storage_domain not in text, path


# -- srt-every-key.json: every srt key, with its verdict -----------------------------------------------

REFUSED_IN_EVERY_KEY = [
    "network.httpProxyPort",
    "network.socksProxyPort",
    "network.mitmProxy",
    "network.parentProxy.http",
    "network.parentProxy.https",
]


def test_every_key_file_uses_every_srt_key() -> None:
    table = {v.path for v in SRT_KEYS} - {"network.filterRequest"}  # no JSON value is valid for it
    assert srt_paths(json.loads(EVERY_KEY.read_text())) == table


def test_every_key_file_refused_keys_are_exactly_those_without_a_harmless_value(tmp_path: Path) -> None:
    data = json.loads(EVERY_KEY.read_text())
    seen = []
    while True:
        try:
            loaded = load(tmp_path, data)
            break
        except SettingsError as error:
            seen.append(error.field)
            *parents, last = error.field.split(".")
            target = data
            for key in parents:
                target = target[key]
            del target[last]
    assert seen == REFUSED_IN_EVERY_KEY
    verdicts = {v.path: v.verdict for v in SRT_KEYS}
    assert all(verdicts[f] == "refused" for f in seen)
    # The rest loads: harmless values of refused keys are silent, warned keys say so once each.
    warned = Counter(w.split(":")[0] for w in loaded.warnings)
    assert set(warned) == {
        "network.allowUnixSockets",
        "network.allowMachLookup",
        "network.tlsTerminate.caCertPath",
        "network.tlsTerminate.caKeyPath",
        "credentials.files[0]",
        "credentials.envVars[0]",
        "credentials.envVars[1]",
        "credentials.envVars[2]",
        "credentials.envVars[3]",
        "credentials.awsPairs",
        "credentials.sigv4",
        "ignoreViolations",
        "ripgrep",
        "seccomp",
        "socatPath",
        "javaAgentJarPath",
        "windows",
        "git",
    }
    assert max(warned.values()) == 1
    settings = loaded.settings
    assert settings.filesystem.deny_read == ["~/.ssh", "~/.config/example/token.json", "~/.example-secrets"]
    assert settings.bwrap_path == "/usr/bin/bwrap" and settings.mandatory_deny_search_depth == 4
    assert settings.network.denied_domain_reasons == {"*:22": "SSH is blocked; use an https:// remote."}
    assert settings.network.tls_terminate.extra_ca_cert_paths == [SYSTEM_BUNDLE]


@needs_srt
def test_srt_itself_accepts_the_every_key_file() -> None:
    script = (
        f"import {{ loadConfig }} from '{SRT_DIR}/dist/utils/config-loader.js';"
        "const r = loadConfig(process.argv[1]); console.log(r.kind, r.reason ?? '');"
    )
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script, str(EVERY_KEY)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "ok"


@needs_srt
def test_table_lists_exactly_srt_schema_keys() -> None:
    script = f"""
import {{ SandboxRuntimeConfigSchema }} from '{SRT_DIR}/dist/sandbox/sandbox-config.js';
const wrappers = ['ZodOptional', 'ZodDefault', 'ZodEffects', 'ZodNullable'];
function unwrap(s) {{
  while (wrappers.includes(s._def.typeName)) s = s._def.typeName === 'ZodEffects' ? s._def.schema : s._def.innerType;
  return s;
}}
function walk(s, path) {{
  const t = unwrap(s);
  if (path) console.log(path);
  if (t._def.typeName === 'ZodObject')
    for (const [k, v] of Object.entries(t.shape)) walk(v, path ? path + '.' + k : k);
  if (t._def.typeName === 'ZodArray' && unwrap(t._def.type)._def.typeName === 'ZodObject')
    for (const [k, v] of Object.entries(unwrap(t._def.type).shape)) walk(v, path + '[].' + k);
}}
walk(SandboxRuntimeConfigSchema, '');
"""
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    assert set(done.stdout.split()) == {v.path for v in SRT_KEYS}


def test_table_is_consistent() -> None:
    paths = [v.path for v in SRT_KEYS]
    assert len(paths) == len(set(paths))
    assert {v.verdict for v in SRT_KEYS} == {"honoured", "warned", "refused"}
    for verdict in SRT_KEYS:
        if verdict.why.startswith("see "):
            target = verdict.why.removeprefix("see ")
            assert target in paths and verdict.verdict == {v.path: v.verdict for v in SRT_KEYS}[target]


def test_compat_doc_lists_every_key() -> None:
    doc = (REPO / "docs" / "srt-compat.md").read_text()
    for v in SRT_KEYS:
        assert f"| `{v.path}` | {v.verdict} | {v.why} |" in doc
    for key, meaning in NETJAIL_KEYS:
        assert f"| `{key}` | {meaning} |" in doc
    counts = Counter(v.verdict for v in SRT_KEYS)
    assert f"{counts['honoured']} honoured, {counts['warned']} warned, {counts['refused']} refused" in doc


def test_every_model_field_is_an_srt_key_or_a_netjail_addition() -> None:
    table = {v.path for v in SRT_KEYS}
    additions = {
        "$schema",
        "envPassthrough",
        "audit",
        "audit.secretEnv",
        "audit.secretFiles",
        "record",
        "record.bodyCap",
        "record.redactHeaders",
        "retention",
        "retention.maxAgeDays",
        "retention.maxTotalMB",
        "network.hosts",
        "network.resolver",
        "network.mode",
        "network.capture",
        "network.limits",
        "network.limits.maxRequestLineBytes",
        "network.limits.maxUrlBytes",
        "network.limits.maxHeaderCount",
        "network.limits.maxHeaderBytes",
        "network.limits.maxHeaderBlockBytes",
        "network.limits.maxChunkLineBytes",
        "network.limits.maxWebsocketMessageBytes",
        "network.limits.maxWebsocketFragments",
    }
    schema = json_schema()

    def walk(node: dict[str, Any], prefix: str) -> set[str]:
        found = set()
        for key, sub in node.get("properties", {}).items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            for candidate in [sub, *sub.get("anyOf", []), sub.get("items", {})]:
                ref = candidate.get("$ref") or candidate.get("items", {}).get("$ref")
                if ref:
                    inner = schema["$defs"][ref.rsplit("/", 1)[1]]
                    found |= walk(inner, path + ("[]" if "items" in candidate or "items" in sub else ""))
        return found

    assert walk(schema, "") == table | additions


def test_committed_schema_is_the_export() -> None:
    committed = json.loads((REPO / "docs" / "settings.schema.json").read_text())
    assert committed == json_schema()


# -- honoured keys and netjail's additions -------------------------------------------------------------


def test_minimal_srt_file(tmp_path: Path) -> None:
    loaded = load(tmp_path, minimal(), origin="env")
    s = loaded.settings
    assert (loaded.origin, loaded.path, loaded.warnings) == ("env", tmp_path / "settings.json", ())
    assert s.network.mode == "enforce" and s.network.resolver_address is None and s.network.hosts == {}
    assert s.record.body_cap == 1_048_576
    assert s.record.redact_headers == ["authorization", "cookie", "proxy-authorization"]
    assert (s.allow_pty, s.mandatory_deny_search_depth, s.env_passthrough) == (False, 3, [])


def test_patterns_and_ports(tmp_path: Path) -> None:
    data = with_(
        minimal(), "network.allowedDomains", ["Example.COM.", "*.example.org:8443", "[2001:db8::1]:443"]
    )
    data = with_(data, "network.deniedDomains", ["*:22", "bad.example.org"])
    net = load(tmp_path, data).settings.network
    assert [(p.kind, p.host, p.port) for p in net.allowed_domains] == [
        ("exact", "example.com", None),
        ("wildcard", "example.org", 8443),
        ("ip", "2001:db8::1", 443),
    ]
    assert [p.kind for p in net.denied_domains] == ["any", "exact"]


def test_netjail_additions(tmp_path: Path) -> None:
    data = minimal()
    data["network"] |= {
        "hosts": {"Registry.Internal.TEST.": "10.1.2.3", "v6.internal.test": "::ffff:192.0.2.1"},
        "resolver": "[2001:db8::53]:5353",
        "mode": "audit",
    }
    data |= {
        "envPassthrough": ["HOME", "LANG"],
        "audit": {"secretEnv": ["API_TOKEN"], "secretFiles": ["~/.config/app/token"]},
        "record": {"bodyCap": 0, "redactHeaders": ["X-Api-Key"]},
    }
    s = load(tmp_path, data).settings
    assert s.network.hosts == {
        "registry.internal.test": ipaddress.IPv4Address("10.1.2.3"),
        "v6.internal.test": ipaddress.IPv4Address("192.0.2.1"),
    }
    assert s.network.resolver_address == ("2001:db8::53", 5353)
    assert s.network.mode == "audit"
    assert s.audit.secret_files == [Path.home() / ".config/app/token"]
    assert s.record.redact_headers == ["x-api-key"] and s.record.body_cap == 0


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("127.0.0.53", ("127.0.0.53", 53)),
    ],
)
def test_resolver_address(tmp_path: Path, text: str, address: tuple[str, int]) -> None:
    assert (
        load(tmp_path, with_(minimal(), "network.resolver", text)).settings.network.resolver_address
        == address
    )


@pytest.mark.parametrize(
    ("entry", "network"),
    [
        ("10.1.2.3/8", "10.0.0.0/8"),  # host bits set: srt masks them too
        ("192.0.2.7", "192.0.2.7/32"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("fe80::1%eth0", "fe80::1/128"),
        ("fc00::/7", "fc00::/7"),
    ],
)
def test_denied_resolved_addresses(tmp_path: Path, entry: str, network: str) -> None:
    data = with_(minimal(), "network.deniedResolvedAddresses", [entry])
    assert load(tmp_path, data).settings.network.denied_resolved_addresses == [ipaddress.ip_network(network)]


def test_harmless_values_of_refused_and_warned_keys_are_silent(tmp_path: Path) -> None:
    data = minimal()
    data["network"] |= {
        "parentProxy": {"noProxy": "localhost"},
        "allowUnixSockets": [],
        "allowMachLookup": [],
    }
    data["network"]["tlsTerminate"] = {}
    data["filesystem"]["disabled"] = False
    data |= {
        "enableWeakerNestedSandbox": False,
        "enableWeakerNetworkIsolation": False,
        "allowAppleEvents": False,
        "ignoreViolations": {},
        "seccomp": {},
        "windows": {},
        "git": {"safeDirectories": []},
        "credentials": {"allowPlaintextInject": False, "awsPairs": []},
    }
    assert load(tmp_path, data).warnings == ()


def test_credentials_are_denied(tmp_path: Path) -> None:
    data = minimal()
    data["filesystem"]["denyRead"] = ["~/.token"]
    data["credentials"] = {
        "files": [{"path": "~/.token", "mode": "mask"}, {"path": "/etc/app/secret", "mode": "deny"}],
        "envVars": [{"name": "API_TOKEN", "mode": "mask"}, {"name": "DB_PASSWORD", "mode": "deny"}],
    }
    loaded = load(tmp_path, data)
    assert loaded.settings.filesystem.deny_read == ["~/.token", "/etc/app/secret"]
    assert loaded.warnings == (
        'credentials.files[0]: mode "mask" is not supported; the file is made unreadable inside the jail instead',
        'credentials.envVars[0]: mode "mask" is not supported; the variable is withheld inside the jail instead',
    )


def test_effective_json_round_trips(tmp_path: Path) -> None:
    data = json.loads(EVERY_KEY.read_text())
    for key in ("httpProxyPort", "socksProxyPort", "mitmProxy", "parentProxy"):
        del data["network"][key]
    data["network"]["allowedDomains"].insert(0, "@pip")
    data["network"]["hosts"] = {"pinned.test": "127.0.0.1"}
    first = load(tmp_path, data)
    effective = json.loads(first.effective_json())
    assert effective["network"]["allowedDomains"][: len(first.expansions["@pip"])] == first.expansions["@pip"]
    again = load_settings(save(tmp_path, first.effective_json(), "effective.json"))
    assert again.settings == first.settings
    assert again.effective_json() == first.effective_json()


def test_loading_has_no_side_effect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path, with_(minimal(), "network.allowedDomains", ["@pip", "example.com"]))
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    load_settings(path)
    assert sorted(tmp_path.rglob("*")) == before


def test_python_construction_by_field_name() -> None:
    settings = Settings(
        network=NetworkSettings.model_validate({"allowed_domains": ["example.com"], "denied_domains": ["*"]}),
        filesystem=FilesystemSettings(deny_read=[], allow_write=["."], deny_write=[]),
    )
    assert settings.network.allowed_domains[0].host == "example.com"
    assert settings.network.denied_domains[0].kind == "any"


# -- refusals: one message with file, field, problem and fix -------------------------------------------


def test_settings_error_format() -> None:
    error = SettingsError("/x/s.json", "network.allowedDomains[2]", "bad entry.", "write a host.")
    assert str(error) == "/x/s.json: network.allowedDomains[2]: bad entry. Fix: write a host"


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('{\n  "network": {,\n}', "(file)", "invalid JSON at line 2, column 15"),
        ("[1, 2]", "(file)", "the file holds an array, not a JSON object"),
        ("  \n", "(file)", "the file is empty"),
        ('{"network": {}, "network": {}}', "(file)", "the key 'network' appears twice"),
        ('{"mandatoryDenySearchDepth": NaN}', "(file)", "NaN is not valid JSON"),
    ],
)
def test_unreadable_files(tmp_path: Path, text: str, field: str, message: str) -> None:
    error = refused(tmp_path, text)
    assert (error.field, message in error.problem) == (field, True), str(error)


def test_missing_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"\(file\): cannot read the settings file \(No such file"):
        load_settings(tmp_path / "absent.json")
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(SettingsError, match=r"\(file\): the file is not UTF-8"):
        load_settings(latin1)


def case(path: str, value: Any) -> dict[str, Any]:
    return with_(minimal(), path, value)


CA_MISSING = "/nonexistent/netjail-test/ca.pem"

REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, data, field, words in the message)
    (
        "unknown key",
        case("network.alowedDomains", []),
        "network.alowedDomains",
        'did you mean "allowedDomains"?',
    ),
    ("unknown top key", {**minimal(), "allowPTY": True}, "allowPTY", 'did you mean "allowPty"?'),
    (
        "snake case",
        case("network.allowed_domains", []),
        "network.allowed_domains",
        'did you mean "allowedDomains"',
    ),
    (
        "unknown far key",
        case("network.qqq", 1),
        "network.qqq",
        "remove it (docs/srt-compat.md lists the keys)",
    ),
    (
        "missing",
        {"network": {"allowedDomains": []}, "filesystem": minimal()["filesystem"]},
        "network.deniedDomains",
        'add "deniedDomains": []',
    ),
    ("missing section", {"network": minimal()["network"]}, "filesystem", 'add "filesystem": {}'),
    ("wrong type bool", case("allowPty", "yes"), "allowPty", "must be true or false, not a string"),
    ("bool as number", case("allowPty", 1), "allowPty", "must be true or false, not a number"),
    (
        "int as string",
        case("mandatoryDenySearchDepth", "3"),
        "mandatoryDenySearchDepth",
        "must be a whole number",
    ),
    (
        "out of range",
        case("mandatoryDenySearchDepth", 11),
        "mandatoryDenySearchDepth",
        "less than or equal to 10",
    ),
    (
        "list as string",
        case("network.allowedDomains", "example.com"),
        "network.allowedDomains",
        "must be an array",
    ),
    ("object as list", case("network", []), "network", "must be an object, not an array"),
    ("null", case("network.resolver", None), "network.resolver", "null is not a value here"),
    (
        "*.com",
        case("network.allowedDomains", ["example.com", "*.com"]),
        "network.allowedDomains[1]",
        "top-level domain. Fix: use a registered domain",
    ),
    (
        "a*b.com",
        case("network.allowedDomains", ["a*b.com"]),
        "network.allowedDomains[0]",
        "'*' appears inside a name",
    ),
    ("empty pattern", case("network.allowedDomains", [""]), "network.allowedDomains[0]", "pattern is empty"),
    (
        "star allowed",
        case("network.allowedDomains", ["*"]),
        "network.allowedDomains[0]",
        "only in a deny list",
    ),
    (
        "number pattern",
        case("network.deniedDomains", [42]),
        "network.deniedDomains[0]",
        "must be a string, not a number",
    ),
    (
        "unknown preset",
        case("network.allowedDomains", ["example.com", "@foo"]),
        "network.allowedDomains[1]",
        "unknown preset '@foo'. Fix: known presets are @npm, @pip",
    ),
    (
        "index after preset",
        case("network.allowedDomains", ["@pip", "*.com"]),
        "network.allowedDomains[1]",
        "*.com",
    ),
    (
        "preset in deny list",
        case("network.deniedDomains", ["@pip"]),
        "network.deniedDomains[0]",
        "presets are expanded only in network.allowedDomains",
    ),
    (
        "exclude with port",
        case("network.tlsTerminate", {"excludeDomains": ["a.example.com:443"]}),
        "network.tlsTerminate.excludeDomains[0]",
        "has a port",
    ),
    (
        "missing CA file",
        case("network.tlsTerminate", {"extraCaCertPaths": [CA_MISSING]}),
        "network.tlsTerminate.extraCaCertPaths[0]",
        "cannot read the CA certificate file",
    ),
    (
        "CA pair",
        case("network.tlsTerminate", {"caCertPath": "/etc/ca.pem"}),
        "network.tlsTerminate",
        "Fix: add caKeyPath or remove both",
    ),
    (
        "reason key",
        {
            **minimal(),
            "network": {
                "allowedDomains": [],
                "deniedDomains": ["github.example.com:22"],
                "deniedDomainReasons": {"github.example.com": "no ssh"},
            },
        },
        'network.deniedDomainReasons["github.example.com"]',
        "did you mean 'github.example.com:22'?",
    ),
    (
        "reason newline",
        {
            **minimal(),
            "network": {
                "allowedDomains": [],
                "deniedDomains": ["x.example.com"],
                "deniedDomainReasons": {"x.example.com": "a\nb"},
            },
        },
        'network.deniedDomainReasons["x.example.com"]',
        "control or invisible character",
    ),
    (
        "reason empty",
        {
            **minimal(),
            "network": {
                "allowedDomains": [],
                "deniedDomains": ["x.example.com"],
                "deniedDomainReasons": {"x.example.com": ""},
            },
        },
        'network.deniedDomainReasons["x.example.com"]',
        "must not be empty",
    ),
    ("resolver name", case("network.resolver", "dns.example.com"), "network.resolver", "must not need DNS"),
    ("resolver port", case("network.resolver", "192.0.2.1:0"), "network.resolver", "invalid port"),
    (
        "resolver v4 bracket",
        case("network.resolver", "[192.0.2.1]:53"),
        "network.resolver",
        "not an IP address",
    ),
    ("resolver garbage", case("network.resolver", "[::1]x"), "network.resolver", "not a resolver address"),
    (
        "hosts value",
        case("network.hosts", {"a.example.test": "not-an-ip"}),
        'network.hosts["a.example.test"]',
        "'not-an-ip' is not an IP address",
    ),
    (
        "hosts octal",
        case("network.hosts", {"a.example.test": "010.0.0.1"}),
        'network.hosts["a.example.test"]',
        "is not an IP address",
    ),
    (
        "hosts key ip",
        case("network.hosts", {"192.0.2.1": "192.0.2.2"}),
        'network.hosts["192.0.2.1"]',
        "is an IP address; hosts pins names",
    ),
    ("hosts key bad", case("network.hosts", {"a b.test": "192.0.2.2"}), 'network.hosts["a b.test"]', "space"),
    (
        "hosts key twice",
        case("network.hosts", {"a.test": "192.0.2.2", "A.test.": "192.0.2.3"}),
        'network.hosts["A.test."]',
        "a second time",
    ),
    (
        "resolved range",
        case("network.deniedResolvedAddresses", ["10.0.0.0/33"]),
        "network.deniedResolvedAddresses[0]",
        "invalid prefix length",
    ),
    (
        "resolved mapped",
        case("network.deniedResolvedAddresses", ["::ffff:0:0/95"]),
        "network.deniedResolvedAddresses[0]",
        "IPv4-mapped",
    ),
    (
        "resolved name",
        case("network.deniedResolvedAddresses", ["example.com"]),
        "network.deniedResolvedAddresses[0]",
        "not an IP address or CIDR range",
    ),
    ("mach", case("network.allowMachLookup", ["com.*.x"]), "network.allowMachLookup[0]", "trailing"),
    (
        "empty path",
        case("filesystem.denyRead", ["~/.ssh", ""]),
        "filesystem.denyRead[1]",
        "the path is empty",
    ),
    ("NUL path", case("filesystem.allowWrite", ["a\x00b"]), "filesystem.allowWrite[0]", "NUL"),
    ("newline path", case("filesystem.denyWrite", ["a\nb"]), "filesystem.denyWrite[0]", "a newline"),
    ("inert glob", case("filesystem.denyRead", ["/data/*/"]), "filesystem.denyRead[0]", 'write "/data/*"'),
    ("relative bwrap", case("bwrapPath", "bin/bwrap"), "bwrapPath", "not an absolute path"),
    (
        "env name",
        case("envPassthrough", ["OK", "1BAD"]),
        "envPassthrough[1]",
        "not an environment variable name",
    ),
    ("header", case("record.redactHeaders", ["x api"]), "record.redactHeaders[0]", "not an HTTP header name"),
    ("body cap", case("record.bodyCap", -1), "record.bodyCap", "greater than or equal to 0"),
    ("mode", case("network.mode", "learn"), "network.mode", "Fix: use 'enforce' or 'audit'"),
    ("port range", case("windows", {"proxyPortRange": [1000, 2000]}), "windows.proxyPortRange", "64 ports"),
    ("guid", case("windows", {"sublayerGuid": "nope"}), "windows.sublayerGuid", "'nope' is not a GUID"),
    (
        "credential mode",
        case("credentials", {"files": [{"path": "/x", "mode": "hide"}]}),
        "credentials.files[0].mode",
        "use 'deny' or 'mask'",
    ),
    (
        "credential key",
        case("credentials", {"envVars": [{"name": "X", "mode": "deny", "Extract": "(x)"}]}),
        "credentials.envVars[0].Extract",
        'did you mean "extract"',
    ),
    (
        "mask dir",
        case("credentials", {"files": [{"path": "/etc/app/", "mode": "mask"}]}),
        "credentials.files[0].path",
        "not a directory",
    ),
    (
        "passthrough withheld",
        {
            **case("credentials", {"envVars": [{"name": "TOKEN", "mode": "deny"}]}),
            "envPassthrough": ["HOME", "TOKEN"],
        },
        "envPassthrough[1]",
        "withholds it",
    ),
    # refused srt keys
    (
        "disabled",
        case("filesystem.disabled", True),
        "filesystem.disabled",
        "always enforces the filesystem rules",
    ),
    (
        "nested",
        case("enableWeakerNestedSandbox", True),
        "enableWeakerNestedSandbox",
        "no weaker nested-sandbox",
    ),
    (
        "weaker net",
        case("enableWeakerNetworkIsolation", True),
        "enableWeakerNetworkIsolation",
        "no weaker network isolation",
    ),
    ("apple events", case("allowAppleEvents", True), "allowAppleEvents", "launch programs outside the jail"),
    ("http proxy", case("network.httpProxyPort", 3128), "network.httpProxyPort", "external HTTP proxy"),
    ("socks proxy", case("network.socksProxyPort", 1080), "network.socksProxyPort", "external SOCKS proxy"),
    (
        "mitm proxy",
        case("network.mitmProxy", {"socketPath": "/s", "domains": ["a.example.com"]}),
        "network.mitmProxy",
        "another proxy",
    ),
    (
        "parent proxy",
        case("network.parentProxy", {"https": "http://proxy.example.com:3128"}),
        "network.parentProxy.https",
        "parent proxy is not supported",
    ),
    ("filter", case("network.filterRequest", "allow"), "network.filterRequest", "JavaScript callback"),
]


@pytest.mark.parametrize(("data", "field", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals(tmp_path: Path, data: dict[str, Any], field: str, words: str) -> None:
    error = refused(tmp_path, data)
    assert error.field == field, str(error)
    assert words in str(error), str(error)


def test_pem_file_without_certificate(tmp_path: Path) -> None:
    not_pem = tmp_path / "key.pem"
    not_pem.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    error = refused(tmp_path, case("network.tlsTerminate", {"extraCaCertPaths": [str(not_pem)]}))
    assert (
        error.field == "network.tlsTerminate.extraCaCertPaths[0]"
        and "holds no PEM certificate" in error.problem
    )


@pytest.mark.skipif(not SYSTEM_BUNDLE.is_file(), reason="no system CA bundle at the Debian path")
def test_pem_bundle_accepted(tmp_path: Path) -> None:
    data = case("network.tlsTerminate", {"extraCaCertPaths": [str(SYSTEM_BUNDLE)]})
    assert load(tmp_path, data).settings.network.tls_terminate.extra_ca_cert_paths == [SYSTEM_BUNDLE]


def test_hostile_key_cannot_break_the_message(tmp_path: Path) -> None:
    error = refused(tmp_path, case("network.a\nb\x1b[31m", 1))
    assert error.field == 'network["a\\nb\\u001b[31m"]'
    assert "\x1b" not in str(error) and "\n" not in str(error)


def test_preset_failure_names_the_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presets, "ETC_NPMRC", tmp_path / "none")
    environ = {"HOME": str(tmp_path), "PATH": "", "NPM_CONFIG_PREFIX": str(tmp_path)}
    path = save(tmp_path, case("network.allowedDomains", ["example.com", "@npm"]))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ=environ)
    assert info.value.field == "network.allowedDomains[1]"
    assert "Fix: set NPM_CONFIG_REGISTRY" in str(info.value)


@pytest.mark.parametrize(
    ("index", "words"),
    [
        ("http://bad..example.com/", "preset @pip produced 'bad..example.com'"),
        ("https://*.example.com/", "may name only exact hosts and IP addresses"),
    ],
)
def test_preset_producing_a_bad_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, index: str, words: str
) -> None:
    monkeypatch.setattr(presets, "ETC_PIP_CONF", tmp_path / "none")
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path), "PIP_INDEX_URL": index}
    path = save(tmp_path, case("network.allowedDomains", ["example.com", "@pip"]))
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ=environ)
    assert info.value.field == "network.allowedDomains[1]" and words in str(info.value)


# -- where the settings come from ----------------------------------------------------------------------


def test_find_settings_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    flag = tmp_path / "flag.json"
    env = {"HOME": str(home), "NETJAIL_SETTINGS": str(tmp_path / "env.json")}
    assert find_settings_path(flag, env) == (flag, "flag")
    assert find_settings_path(None, env) == (tmp_path / "env.json", "env")
    env = {"HOME": str(home)}
    assert find_settings_path(None, env) == (BUNDLED_DEFAULT, "bundled")
    user = home / ".config" / "netjail" / "settings.json"
    user.parent.mkdir(parents=True)
    user.symlink_to(tmp_path / "dangling")  # there but broken: an error later, never a silent fall-back
    assert find_settings_path(None, env) == (user, "user")
    xdg = tmp_path / "xdg"
    assert find_settings_path(None, env | {"XDG_CONFIG_HOME": str(xdg)}) == (BUNDLED_DEFAULT, "bundled")
    (xdg / "netjail").mkdir(parents=True)
    (xdg / "netjail" / "settings.json").write_text("{}")
    assert find_settings_path(None, env | {"XDG_CONFIG_HOME": str(xdg)}) == (
        xdg / "netjail" / "settings.json",
        "user",
    )
    assert find_settings_path(None, env | {"XDG_CONFIG_HOME": "relative"}) == (user, "user")  # XDG: ignored


def test_bundled_default_is_the_repositorys() -> None:
    assert BUNDLED_DEFAULT == REPO / "configs" / "default.json" and BUNDLED_DEFAULT.is_file()


def test_command_line_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from netjail.settings import main

    assert main(["--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()
    assert main(["--check", str(save(tmp_path, case("allowPty", "yes")))]) == 125
    assert "allowPty: must be true or false" in capsys.readouterr().err
    assert main(["--check", str(save(tmp_path, case("ripgrep", {"command": "rg"})))]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ripgrep"] == {"command": "rg"}
    assert captured.err == "warning: ripgrep: ignored: netjail finds the mandatory-deny files itself\n"
    assert main([]) == 2
