"""The proxy process starts on every run's critical path: it receives the settings already validated (a frozen
ProxySettings) and never imports pydantic, structlog or aioquic (HTTP/3 is off). Checked in a real proxy process
that served a request, and after `import netjail`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from netjail.policy.proxy_settings import ParserLimits, ProxySettings
from netjail.proxy import client
from netjail.proxy.ca import create_run_ca
from netjail.settings import load_settings
from netjail.settings.limits import NetworkLimits

FILESYSTEM = {"allowWrite": ["."], "denyRead": [], "denyWrite": []}
HEAVY = ("pydantic", "pydantic_core", "structlog", "aioquic", "rich")

# The proxy's own entry point, run as netjail runs it; at its end it prints the top-level modules it had loaded.
PROXY = (
    "import os, sys\n"
    "import netjail.proxy.process as process\n"
    "code = process.main(sys.argv[1:])\n"
    "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), flush=True)\n"
    "os._exit(code)\n"
)


def _start_proxy(tmp_path: Path) -> client.StandbyProxy:
    proxy = client.StandbyProxy.__new__(client.StandbyProxy)
    proxy.killed = False
    proxy.control, remote = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    argv = ["--control-fd", str(remote.fileno()), "--parent", str(os.getpid())]
    proxy.process = subprocess.Popen(
        [sys.executable, "-I", "-c", PROXY, *argv],
        pass_fds=[remote.fileno()],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    remote.close()
    return proxy


def test_a_started_proxy_holds_no_pydantic_structlog_or_aioquic(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(
        json.dumps(
            {"network": {"allowedDomains": ["allowed.test"], "deniedDomains": []}, "filesystem": FILESYSTEM}
        )
    )
    settings = ProxySettings.of(load_settings(settings_file).settings)
    (tmp_path / "ca").mkdir(mode=0o700)
    ca = create_run_ca(tmp_path / "ca")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    proxy = _start_proxy(tmp_path)
    config = {
        "settings": str(settings_file),
        "record_dir": str(tmp_path),
        "confdir": str(ca.confdir),
        "upstream_trust": str(ca.host_bundle),
        "log_file": str(tmp_path / "proxy.log"),
        "capture_mode": "proxy-variables",
        "secret_file": None,
        "debug": False,
        "credentials": [],
    }
    try:
        proxy.configure(config, {"proxy": [listener]}, settings)
        listener.close()
        proxy.control.settimeout(60)
        assert proxy.control.recv(64) == b"ready\n"
        for host in ("denied.test", "allowed.test"):  # judged by the policy that came over the socket
            done = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", f"http://127.0.0.1:{port}",
                 "--max-time", "20", f"http://{host}/"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            codes = {"denied.test": "403", "allowed.test": "502"}  # allowed, then it does not resolve
            assert done.stdout == codes[host], host
    finally:
        proxy.process.send_signal(signal.SIGTERM)
        out, _ = proxy.process.communicate(timeout=30)
    loaded = set(out.decode().split())
    assert "mitmproxy" in loaded  # the control: the list is the proxy's
    assert sorted(loaded & set(HEAVY)) == ["aioquic"]  # not yet: mitmproxy's tlsconfig and layers import it
    records = [json.loads(line) for line in (tmp_path / "flows.jsonl").read_text().splitlines()]
    verdicts = {r.get("host"): r.get("verdict") for r in records if r.get("host")}
    assert verdicts == {"denied.test": "deny", "allowed.test": "allow"}


def test_import_netjail_loads_nothing_heavy() -> None:
    code = "import sys, netjail; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert sorted(set(done.stdout.split()) & set(HEAVY)) == []
    done = subprocess.run(
        [sys.executable, "-I", "-c", "import netjail; print(netjail.Sandbox.__name__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "Sandbox"  # the lazy export still works


def test_parser_limit_defaults_are_the_settings_defaults() -> None:
    assert ParserLimits.of(NetworkLimits()) == ParserLimits()


def test_proxy_settings_survive_the_control_socket(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {
                "network": {
                    "allowedDomains": ["a.test", "*.b.test:443"],
                    "deniedDomains": ["x.a.test"],
                    "hosts": {"a.test": "127.0.0.1"},
                    "rules": [{"hosts": ["a.test"], "requests": [{"deny": ["POST"]}], "default": "allow"}],
                    "limits": {"maxUrlBytes": 999},
                },
                "filesystem": FILESYSTEM,
                "record": {"bodyCap": 7, "redactHeaders": ["X-Token"]},
            }
        )
    )
    value = ProxySettings.of(load_settings(path).settings)
    again = ProxySettings.loads(value.dumps())
    assert again == value
    assert again.limits.max_url_bytes == 999 and again.body_cap == 7 and again.redact_headers == {"x-token"}
