"""Every srt key has its verdict: the table, srt-every-key.json, docs/srt-compat.md and the warnings."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from netjail.settings import NETJAIL_KEYS, SRT_KEYS, SettingsError, json_schema, srt_keys

from .settings_files import EVERY_KEY, REPO, SYSTEM_BUNDLE, load, minimal

SRT_VERSION = "0.0.81"
SRT_DIR = Path(os.environ.get("NETJAIL_SRT_DIR", "/tmp/srt/node_modules/@anthropic-ai/sandbox-runtime"))
SCHEMA_KEYS = REPO / "tests" / "data" / f"srt-{SRT_VERSION}-schema-keys.txt"  # tests/data/srt-schema-keys.mjs
NODE = shutil.which("node") or "node"


def _srt_version() -> str | None:
    try:
        return json.loads((SRT_DIR / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


needs_srt = pytest.mark.skipif(
    shutil.which(NODE) is None or _srt_version() != SRT_VERSION,
    reason=f"node and srt {SRT_VERSION} (NETJAIL_SRT_DIR) are needed to compare with srt itself",
)


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
        "network.allowPlaintextHeaderSet",
        "network.tlsTerminate.caCertPath",
        "network.tlsTerminate.handshakeTimeoutMs",
        "network.tlsTerminate.caKeyPath",
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
    assert settings.filesystem.deny_read == [
        "~/.ssh",
        "~/.config/example/*.key",
        "~/.config/example/token.json",
        "~/.example-secrets",
    ]
    assert [getattr(p, "literal", False) for p in settings.filesystem.deny_read] == [
        False,
        True,
        False,
        False,
    ]
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


def test_table_lists_exactly_the_keys_of_srts_schema_in_its_order() -> None:
    """Against the committed dump of srt 0.0.81's schema, so this runs without srt (CI)."""
    assert [v.path for v in SRT_KEYS] == SCHEMA_KEYS.read_text().split()


@needs_srt
def test_the_committed_dump_is_srts_own_schema() -> None:
    walker = REPO / "tests" / "data" / "srt-schema-keys.mjs"
    done = subprocess.run([NODE, str(walker), str(SRT_DIR)], capture_output=True, text=True, check=True)
    assert done.stdout == SCHEMA_KEYS.read_text()


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


def test_compat_doc_names_the_module_that_holds_the_table() -> None:
    doc = (REPO / "docs" / "srt-compat.md").read_text()
    module = Path(inspect.getfile(srt_keys)).relative_to(REPO).as_posix()
    assert f"`SRT_KEYS` in `{module}`" in doc
    assert srt_keys.SRT_KEYS is SRT_KEYS


def test_every_model_field_is_an_srt_key_or_a_netjail_addition() -> None:
    table = {v.path for v in SRT_KEYS}
    additions = {
        "$schema",
        "envPassthrough",
        "audit",
        "audit.secretEnv",
        "audit.secretFiles",
        "audit.canaries",
        "record",
        "record.bodyCap",
        "record.redactHeaders",
        "record.refusedWrites",
        "retention",
        "retention.maxAgeDays",
        "retention.maxTotalMB",
        "credentials.envVars[].pinHeaders",
        "credentials.files[].pinHeaders",
        "network.hosts",
        "network.resolver",
        "network.mode",
        "network.capture",
        "network.ask",
        "network.ask.enabled",
        "network.ask.timeoutSeconds",
        "network.ask.agentChannel",
        "network.limits",
        "network.limits.maxRequestLineBytes",
        "network.limits.maxUrlBytes",
        "network.limits.maxHeaderCount",
        "network.limits.maxHeaderBytes",
        "network.limits.maxHeaderBlockBytes",
        "network.limits.maxChunkLineBytes",
        "network.limits.maxWebsocketMessageBytes",
        "network.limits.maxWebsocketFragments",
        "network.limits.maxRequestUploadBytes",
        "network.limits.maxHostUploadBytes",
        "network.limits.maxRunUploadBytes",
        "network.rules",
        "network.rules[].hosts",
        "network.rules[].requests",
        "network.rules[].requests[].allow",
        "network.rules[].requests[].deny",
        "network.rules[].requests[].path",
        "network.rules[].requests[].query",
        "network.rules[].requests[].reason",
        "network.rules[].default",
        "network.rules[].caseSensitivePaths",
        "network.rules[].allowEncodedSlash",
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
            for inline in sub.get("items", {}).get("anyOf", []):  # a string-or-object item (literal paths)
                found |= walk(inline, path + "[]")
        return found

    assert walk(schema, "") == table | additions


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
