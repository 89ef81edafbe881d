"""What a run with given settings would apply, computed without running anything (`netjail explain`).

The jail is described by the very backend a run would use, given a JailSpec built as the runner builds it (the
same path rules, argv, private state and trust files), with the per-run parts replaced by placeholders: the run
directory is `<run-id>`, the macOS proxy port is 3128, its secret `<secret>`. On Linux the argument list is
therefore exactly what `netjail -d` shows for a run in the same directory, with the run id in place of
`<run-id>` (tests/integration/test_explain.py checks it).
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from netjail.jail.environment import ENVIRONMENT_RULE, withheld_names
from netjail.jail.paths import absent_entries
from netjail.jail.spec import PROXY_PORT, Jail, JailSpec
from netjail.proxy.ca import RunCA
from netjail.records.rundir import live_root
from netjail.settings import LoadedSettings

RUN_ID = "<run-id>"
SECRET = "<secret>"
PLATFORMS = ("linux", "macos")


def host_platform() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def placeholder_ca(proxy_dir: Path) -> RunCA:
    """The paths `netjail.proxy.ca.create_run_ca` writes in a run's proxy directory (nothing is created here)."""
    return RunCA(
        confdir=proxy_dir / "confdir",
        cert_path=proxy_dir / "netjail-ca.pem",
        host_bundle=proxy_dir / "upstream-trust.pem",
        jail_bundle=proxy_dir / "jail-trust.pem",
    )


def backend(loaded: LoadedSettings, platform: str) -> Jail:
    settings = loaded.settings
    if platform == "linux":
        from netjail.jail.linux.bwrap import BwrapJail

        return BwrapJail(settings.bwrap_path)
    from netjail.jail.macos.sandbox_exec import SeatbeltJail

    return SeatbeltJail(
        settings,
        proxy_port=PROXY_PORT,
        secret=SECRET,
        run_dir=Path("/private/tmp") / f"netjail-{RUN_ID}",
        log_tag=f"netjail-{RUN_ID}",
    )


def jail_spec(loaded: LoadedSettings, jail: Jail, argv: tuple[str, ...], cwd: Path) -> JailSpec:
    """The JailSpec a run in `cwd` would build (netjail.run.spec.build_spec), with placeholder run files."""
    from netjail.run.spec import build_spec

    proxy_dir = live_root() / RUN_ID
    return build_spec(jail, loaded, argv, cwd, placeholder_ca(proxy_dir), proxy_dir, prepare=False)


def explain(loaded: LoadedSettings, platform: str, argv: tuple[str, ...]) -> dict[str, Any]:
    """The report: the policy in words (as data), and the backend's own description of the jail."""
    from netjail.run.spec import credential_variables

    settings = loaded.settings
    jail = backend(loaded, platform)
    cwd = Path.cwd().resolve()
    spec = jail_spec(loaded, jail, argv, cwd)
    net, fs, rules = settings.network, settings.filesystem, spec.rules
    absent = absent_entries(settings, cwd)
    report: dict[str, Any] = {
        "platform": platform,
        "backend": jail.name,
        "settings_file": str(loaded.path),
        "settings_origin": loaded.origin,
        "warnings": [*loaded.warnings, *(a.warning() for a in absent if a.key != "denyRead")],
        "presets": loaded.expansions,
        "cwd": str(cwd),
        "argv": list(argv),
        "network": {
            "mode": net.mode,
            "capture": net.capture,
            "allowed": [p.source for p in net.allowed_domains],
            "denied": [p.source for p in net.denied_domains],
            "pinned": {name: str(addr) for name, addr in net.hosts.items()},
            "tls_not_terminated": [p.source for p in net.tls_terminate.exclude_domains],
            "allow_local_binding": net.allow_local_binding,
            "allow_unix_sockets": list(net.allow_unix_sockets),
            "allow_all_unix_sockets": net.allow_all_unix_sockets,
            "allow_mach_lookup": list(net.allow_mach_lookup),
            "upload_caps": {
                name: value
                for name, value in (
                    ("maxRequestUploadBytes", net.limits.max_request_upload_bytes),
                    ("maxHostUploadBytes", net.limits.max_host_upload_bytes),
                    ("maxRunUploadBytes", net.limits.max_run_upload_bytes),
                )
                if value is not None
            },
            "rules": [
                {
                    "hosts": [p.source for p in block.hosts],
                    "default": block.default,
                    "case_sensitive_paths": block.case_sensitive_paths,
                    "allow_encoded_slash": block.allow_encoded_slash,
                    "requests": [{"rule": r.describe(), "reason": r.reason} for r in block.requests],
                }
                for block in net.rules
            ],
        },
        "filesystem": {
            "hidden": [str(p) for p in rules.hidden],
            "readable_again": [str(p) for p in rules.reallowed],
            "writable": [str(p) for p in rules.writable],
            "read_only": [str(p) for p in rules.read_only],
            "netjail_state": [str(p) for p in spec.private_state],
            "live_material": str(spec.files_dir),
            "mandatory_deny_depth": settings.mandatory_deny_search_depth,
            "allow_git_config": fs.allow_git_config,
            "absent_hidden": [a.note() for a in absent if a.key == "denyRead"],
            "base_directories": _base_directories(spec) if platform == "linux" else {},
        },
        "allow_pty": settings.allow_pty,
        "environment": {k: spec.env[k] for k in _shown_variables(spec.env)},
        "environment_rule": ENVIRONMENT_RULE,
        # names only, never values; not those netjail sets itself (proxy, CA)
        "withheld": [
            n
            for n in withheld_names(os.environ, settings.env_passthrough, credential_variables(settings))
            if n not in spec.env
        ],
        "credentials": _credentials(settings, platform),
        "plaintext_inject": settings.credentials.allow_plaintext_inject,
    }
    if platform == "linux":
        from netjail.jail.linux.seccomp import describe as seccomp_rules

        report["bwrap_args"] = jail.describe(spec)
        report["seccomp"] = seccomp_rules(spec.allow_unix_sockets)
    else:
        report["profile"] = "\n".join(jail.describe(spec)) + "\n"
        report["proxy"] = {
            "port": f"{PROXY_PORT} here; a free port on 127.0.0.1, chosen per run",
            "secret": SECRET,
        }
    return report


def _base_directories(spec: JailSpec) -> dict[str, dict[str, Any]]:
    """What /tmp and /run really are inside a Linux jail, from the same rules bwrap_args applies: the host's own
    directory when allowWrite names it, else the jail's own empty one with the host paths bound inside it."""
    rules = spec.rules
    described: dict[str, dict[str, Any]] = {}
    for base in (Path("/tmp"), Path("/run")):
        bound: list[str] = []
        if base not in rules.writable:
            bound += [f"{p} (writable)" for p in rules.writable if base in p.parents]
            bound += [f"{p} (read-only, allowRead)" for p in rules.reallowed if base in p.parents]
            if base in spec.cwd.parents and not any(
                w == spec.cwd or w in spec.cwd.parents for w in rules.writable
            ):
                bound.append(f"{spec.cwd} (read-only, the working directory)")
        described[str(base)] = {"host": base in rules.writable, "bound": bound}
    return described


def _credentials(settings: Any, platform: str) -> list[dict[str, Any]]:
    """Each credential, what the command sees of it and where the proxy puts the real value (docs/credentials.md)."""
    from netjail.settings.credentials import effective_inject_hosts

    creds = settings.credentials
    shown: list[dict[str, Any]] = []
    for kind, entries in (("variable", creds.env_vars), ("file", creds.files)):
        for entry in entries:
            source = entry.name if kind == "variable" else entry.path
            if entry.mode == "deny":
                sees = "nothing (withheld)" if kind == "variable" else "nothing (unreadable)"
                hosts: list[str] = []
            else:
                sees = "a placeholder of the same shape, minted per run"
                if kind == "file":
                    sees = (
                        "nothing (unreadable: macOS cannot bind a masked copy)"
                        if platform != "linux"
                        else "the file with placeholders in place of the secrets"
                    )
                hosts = [p.source for p in effective_inject_hosts(entry, settings.network)]
            shown.append(
                {"kind": kind, "source": source, "mode": entry.mode, "sees": sees, "inject_hosts": hosts}
            )
    for pair in creds.pairs:
        shown.append(
            {
                "kind": "aws pair",
                "source": f"{pair.access_key_id_var} + {pair.secret_access_key_var}"
                + (f" + {pair.session_token_var}" if pair.session_token_var else ""),
                "mode": "mask",
                "sees": "placeholder keys; requests signed with them are signed again with the real keys (SigV4)",
                "inject_hosts": [],
            }
        )
    return shown


def _shown_variables(env: dict[str, str]) -> list[str]:
    names = ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "TMPDIR"]
    return [n for n in names if n in env]


def render(report: dict[str, Any]) -> str:
    """The report for a person: the policy in words, then the backend's exact rules."""
    net, fs = report["network"], report["filesystem"]
    out: list[str] = []

    def say(text: str = "") -> None:
        out.append(text)

    def listing(title: str, items: list[str], empty: str) -> None:
        say(f"  {title}:" + ("" if items else f" {empty}"))
        for item in items:
            say(f"    {item}")

    name = {"linux": "Linux (bubblewrap)", "macos": "macOS (seatbelt, sandbox-exec)"}[report["platform"]]
    say(f"netjail explain: {name}")
    say(f"settings: {report['settings_file']} ({report['settings_origin']})")
    for warning in report["warnings"]:
        say(f"warning: {warning}")
    for preset, hosts in report["presets"].items():
        say(f"preset {preset}: {', '.join(hosts) or '(no hosts)'}")
    say(f"working directory: {report['cwd']}")
    say()
    say("Network: every connection goes through netjail's proxy, which judges and records it")
    say(
        f"  mode: {net['mode']}"
        + ("  (denials are recorded, not enforced)" if net["mode"] == "audit" else "")
    )
    if report["platform"] == "linux":
        say(f"  capture: {net['capture']}")
    listing("allowed", net["allowed"], "nothing (no host is reachable)")
    listing("denied (checked first)", net["denied"], "-")
    say("  anything else: denied")
    if net["upload_caps"]:
        caps = ", ".join(f"{name} {value} bytes" for name, value in net["upload_caps"].items())
        say(f"  upload caps (network.limits; 413, or the stream is cut): {caps}")
    if net["rules"]:
        say(
            "  request rules (network.rules; they only narrow the allowed hosts; the first matching entry wins):"
        )
        for index, block in enumerate(net["rules"]):
            flags = [f"default {block['default']}"]
            flags += ["case-sensitive paths"] if block["case_sensitive_paths"] else []
            flags += ["%2F accepted as data"] if block["allow_encoded_slash"] else []
            say(f"    [{index}] {', '.join(block['hosts'])} ({'; '.join(flags)}):")
            for number, entry in enumerate(block["requests"]):
                why = f"  ({entry['reason']})" if entry["reason"] else ""
                say(f"      {number}. {entry['rule']}{why}")
            say(f"      otherwise: {block['default']}")
    if net["pinned"]:
        listing("pinned names", [f"{k} -> {v}" for k, v in net["pinned"].items()], "")
    if net["tls_not_terminated"]:
        listing("tunnelled without TLS interception", net["tls_not_terminated"], "")
    if report["platform"] == "linux":
        # the jail has its own network namespace: its loopback is its own, whatever allowLocalBinding says
        say("  listening on local ports: yes, on the jail's own loopback (its own network namespace, which")
        say("    nothing outside the jail can reach); the host's ports are out of reach")
    else:
        say(f"  listening on local ports: {'allowed' if net['allow_local_binding'] else 'no'}")
    if report["platform"] == "macos":
        sockets = "all" if net["allow_all_unix_sockets"] else ", ".join(net["allow_unix_sockets"]) or "none"
        say(f"  Unix sockets: {sockets} (never the system resolver's, unless named)")
        say(f"  extra Mach services: {', '.join(net['allow_mach_lookup']) or 'none'}")
    say()
    say("Files")
    say("  readable: everything except the hidden paths")
    listing("hidden (denyRead)", fs["hidden"], "none")
    listing("named in denyRead but absent now", fs["absent_hidden"], "none")
    listing("readable again inside them (allowRead)", fs["readable_again"], "none")
    listing("writable (allowWrite)", fs["writable"], "none")
    listing("read-only inside them (denyWrite, dangerous files, the settings file)", fs["read_only"], "none")
    listing("netjail's own state, hidden", fs["netjail_state"], "")
    say(f"  live run material (CA key, proxy secret, trust files): {fs['live_material']}, removed at the end")
    git = "writable" if fs["allow_git_config"] else "read-only"
    say(f"  .git/config: {git}; .git/hooks: read-only")
    if report["platform"] == "linux":
        for base, what in fs["base_directories"].items():
            if what["host"]:
                say(
                    f"  {base}: the host's {base}, writable (allowWrite): what the command writes there stays"
                )
                continue
            own = "private to the run, empty at the start" if base == "/tmp" else "empty"
            if base == "/run":
                own += " but for netjail's own files (/run/netjail)"
            say(f"  {base}: {own}" + ("; from the host inside it:" if what["bound"] else ""))
            for item in what["bound"]:
                say(f"    {item}")
    else:
        say("  /tmp and your temporary directory: hidden; TMPDIR is the run's own directory")
        say("  dangerous files (.bashrc, .git/hooks, …) cannot be created at any depth below a writable path")
    if report["platform"] == "linux":
        say("  terminal: a session of its own; its own pseudo-terminal on a terminal (~. ends the run)")
    else:
        say(f"  pseudo-terminal: {'yes' if report['allow_pty'] else 'no (new session)'}")
    say()
    if report["credentials"]:
        plaintext = "" if report.get("plaintext_inject") else " over TLS netjail terminates"
        say(f"Credentials (the real value goes only to the inject hosts{plaintext}; docs/credentials.md)")
        for c in report["credentials"]:
            say(f"  {c['kind']} {c['source']} ({c['mode']}): the command sees {c['sees']}")
            if c["inject_hosts"]:
                say(f"    injected toward: {', '.join(c['inject_hosts'])}")
        say()
    say("Environment")
    for line in textwrap.wrap(report["environment_rule"], 110):
        say(f"  {line}")
    withheld = report["withheld"]
    listed = ", ".join(withheld) if withheld else "none"
    for line in textwrap.wrap(f"withheld from yours now ({len(withheld)}): {listed}", 110):
        say(f"  {line}")
    say("  set by netjail:")
    for key, value in report["environment"].items():
        say(f"    {key}={value}")
    say()
    if report["platform"] == "linux":
        say("seccomp filter (bwrap --seccomp): everything allowed except")
        for rule in report["seccomp"]:
            say(f"  {rule}")
        say()
        say("bwrap arguments (what `netjail -d` prints as jail.args):")
        args = report["bwrap_args"]
        line = f"  {args[0]}"
        for arg in args[1:]:
            if arg.startswith("--"):
                say(line)
                line = f"    {arg}"
            else:
                line += f" {_quote(arg)}"
        say(line)
    else:
        say(
            f"seatbelt profile (sandbox-exec -p PROFILE; the proxy port is {PROXY_PORT} here, chosen per run):"
        )
        out.append(report["profile"].rstrip("\n"))
    return "\n".join(out) + "\n"


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
