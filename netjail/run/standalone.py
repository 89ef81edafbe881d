"""`netjail proxy`: the judging and recording proxy of a run, without a jail, for clients netjail does not start —
containers and VMs whose proxy variables point at it, or a team's own tools.

It is a run in every other way: one run directory with its records (`netjail flows`, `audit`, `why` read it), the
settings judged as in a jail, a fresh CA whose key never leaves the live root, and a run_end when it stops (Ctrl-C
or SIGTERM). It is never an open proxy: every client must send the run's generated secret as its proxy
credentials (`http://netjail:SECRET@HOST:PORT`), on loopback too, where any local user could otherwise use it.
"""

from __future__ import annotations

import ipaddress
import secrets
import selectors
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from netjail.policy.proxy_settings import ProxySettings
from netjail.proxy.ca import create_run_ca
from netjail.proxy.client import ProxyFailed, StandbyProxy
from netjail.records import build
from netjail.records.log import RecordLog
from netjail.records.read import count_verdicts
from netjail.records.rundir import RunDir
from netjail.records.schema import EndReason
from netjail.run.outcome import Outcome, RunFailed
from netjail.run.runner import reserve_log_space
from netjail.run.spec import proxy_config
from netjail.run.supervise import ExitNotifier
from netjail.settings import LoadedSettings
from netjail.utils.status import ExitStatus, ProxyExit

READY_SECONDS = 30.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class Listening:
    """What a client needs: where the proxy is, its credentials, and the CA to trust."""

    host: str
    port: int
    secret: str
    ca_cert: Path  # the run CA's certificate alone (additive trust: NODE_EXTRA_CA_CERTS)
    trust_bundle: (
        Path  # the host's roots plus the run CA (replacing trust: SSL_CERT_FILE, REQUESTS_CA_BUNDLE)
    )
    run_dir: Path

    def url_for(self, client_host: str | None = None) -> str:
        """The proxy URL with the secret, naming the proxy as clients reach it (default: where it listens)."""
        host = client_host or self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://netjail:{self.secret}@{host}:{self.port}"

    def environment(
        self, ca_path: str | None = None, bundle_path: str | None = None, client_host: str | None = None
    ) -> dict[str, str]:
        """The variables a client sets (paths as the client sees them, when it mounts the files elsewhere)."""
        ca, bundle = ca_path or str(self.ca_cert), bundle_path or str(self.trust_bundle)
        url = self.url_for(client_host)
        variables = {name: url for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
        variables |= {"NODE_EXTRA_CA_CERTS": ca, "NODE_USE_ENV_PROXY": "1"}
        variables |= {
            name: bundle for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT")
        }
        return variables


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT or PORT (loopback). Raises ValueError with the fix."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    host = host.strip("[]") or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(
            f"--listen {value!r}: expected an IP address and a port, e.g. 127.0.0.1:8080 or [::1]:8080"
        ) from None
    if not 0 <= number <= 65535:
        raise ValueError(f"--listen {value!r}: the port must be 0-65535 (0: any free port)")
    return host, number


def serve(
    loaded: LoadedSettings,
    host: str,
    port: int,
    *,
    on_ready: Callable[[Listening], None],
    debug: bool = False,
    proxy: StandbyProxy | None = None,
) -> Outcome:
    proxy = proxy or StandbyProxy()
    try:
        return _serve(loaded, host, port, on_ready, debug, proxy)
    finally:
        proxy.kill()


def _serve(
    loaded: LoadedSettings,
    host: str,
    port: int,
    on_ready: Callable[[Listening], None],
    debug: bool,
    proxy: StandbyProxy,
) -> Outcome:
    try:
        listener = socket.create_server(
            (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET, backlog=512
        )
    except OSError as e:
        raise RunFailed(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    port = listener.getsockname()[1]
    runs = RunDir.create()
    reserve, reserve_error = reserve_log_space(runs)
    records = RecordLog(runs.flows_jsonl, reserve)
    runs.flows_mitm.touch(mode=0o600)
    runs.settings_json.write_text(loaded.effective_json())
    runs.point_latest()
    settings = loaded.settings
    records.write(
        build.run_start(
            runs.run_id,
            command=f"netjail proxy --listen {host}:{port}",
            argv=[],
            cwd=str(Path.cwd()),
            settings_file=str(loaded.path.resolve()),
            settings_origin=loaded.origin,
            platform="standalone-proxy",
            capture_mode="proxy-variables",
            network_mode=settings.network.mode,
        )
    )
    outcome = Outcome(ExitStatus.NETJAIL_FAILED, "setup_failed")
    try:
        if reserve_error is not None:
            raise RunFailed(
                f"cannot reserve space for the flow log in {runs.path}: {reserve_error}", "log_failed"
            )
        ca = create_run_ca(runs.proxy_dir, settings.network.tls_terminate.extra_ca_cert_paths)
        secret = secrets.token_urlsafe(24)
        proxy.configure(
            proxy_config(runs, ca, "proxy-variables", secret, debug),
            {"proxy": [listener]},
            ProxySettings.of(settings),
        )
        listener.close()  # the proxy holds it now
        _wait_ready(proxy)
        on_ready(Listening(host, port, secret, ca.cert_path, ca.jail_bundle, runs.path))
        outcome = _wait_for_stop(proxy)
    except ProxyFailed as e:
        outcome = Outcome(ExitStatus.NETJAIL_FAILED, "proxy_failed", message=str(e))
    except (RunFailed, OSError) as e:
        outcome = Outcome(ExitStatus.NETJAIL_FAILED, getattr(e, "reason", "setup_failed"), message=str(e))
    finally:
        listener.close()
        if proxy.stop() == ProxyExit.LOG_FAILED and outcome.reason != "log_failed":
            outcome = Outcome(
                ExitStatus.NETJAIL_FAILED, "log_failed", message="the flow log could not be written"
            )
        runs.remove_secrets()
        outcome.counts = count_verdicts(runs.flows_jsonl)
        records.write(outcome.run_end(runs.run_id))
        records.close()
        if reserve is not None:
            reserve.remove()
    outcome.run_dir = runs.path
    return outcome


def _wait_ready(proxy: StandbyProxy) -> None:
    proxy.control.settimeout(READY_SECONDS)
    try:
        line = proxy.control.recv(64)
    except TimeoutError:
        raise ProxyFailed(f"the proxy was not ready after {READY_SECONDS:.0f} s") from None
    finally:
        proxy.control.settimeout(None)
    if b"ready" not in line:
        raise ProxyFailed("the proxy process ended before it was ready")


def _wait_for_stop(proxy: StandbyProxy) -> Outcome:
    """Serve until Ctrl-C, SIGTERM or SIGHUP (exit 0), or until the proxy dies (exit 125)."""
    wake_read, wake_write = socket.socketpair()
    wake_write.setblocking(False)
    previous = {s: signal.signal(s, lambda *_: None) for s in STOP_SIGNALS}
    old_wakeup = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
    proxy_exit = ExitNotifier(proxy.pid)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(wake_read, selectors.EVENT_READ, "signal")
            selector.register(proxy_exit.fileno(), selectors.EVENT_READ, "proxy")
            for key, _ in selector.select():
                if key.data == "signal":
                    signum = wake_read.recv(1)[0]
                    return Outcome(ExitStatus.OK, "exited", signal_received=signum)
            code = proxy.process.wait()  # it ended on its own
            reason: EndReason = "log_failed" if code == ProxyExit.LOG_FAILED else "proxy_failed"
            return Outcome(
                ExitStatus.NETJAIL_FAILED, reason, message=f"the proxy process ended (exit {code})"
            )
    finally:
        proxy_exit.close()
        signal.set_wakeup_fd(old_wakeup)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        wake_read.close()
        wake_write.close()
