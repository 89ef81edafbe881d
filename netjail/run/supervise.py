"""The supervisor's wait: one selector over the command's exit, the proxy's exit and status lines, signals, the
relay terminal, policy updates and ask mode's questions, until the command ends or the proxy dies."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
import time

import structlog

from netjail.jail.spec import Jail, Launched
from netjail.proxy.client import StandbyProxy
from netjail.records.schema import EndReason
from netjail.run.ask import Asking
from netjail.run.outcome import Outcome
from netjail.run.terminal import HANGUP, Escaped, TerminalRelay
from netjail.run.updates import PolicyUpdates
from netjail.utils.status import ExitStatus, ProxyExit

log = structlog.get_logger("netjail")

# SIGINT is forwarded and the run goes on as long as the command does (a program may handle it); SIGTERM and SIGHUP
# are forwarded, and after GRACE_SECONDS everything left is killed
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_SECONDS = 5.0


class ExitNotifier:
    """A descriptor that becomes readable when a child process exits: a pidfd on Linux, a kqueue on macOS."""

    def __init__(self, pid: int):
        self._kqueue = None
        if sys.platform != "darwin":
            self._fd = os.pidfd_open(pid)
        else:  # pragma: no cover - macOS
            import select

            self._kqueue = select.kqueue()
            self._kqueue.control(
                [select.kevent(pid, select.KQ_FILTER_PROC, select.KQ_EV_ADD, select.KQ_NOTE_EXIT)], 0
            )
            self._fd = self._kqueue.fileno()

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._kqueue is not None:
            self._kqueue.close()
        else:
            os.close(self._fd)


def canary_message(line: str) -> str:
    """The proxy's `canary {"canary", "host", "where"}` line (addons/canaries.py) as the run's end says it."""
    import json

    from netjail.detect.canaries import describe_where
    from netjail.utils.text import safe_text

    try:
        said = json.loads(line.removeprefix("canary "))
        what = f"canary {said['canary']} went to host {said['host']} {describe_where(str(said['where']))}"
    except (ValueError, KeyError, TypeError):
        what = "a canary credential was sent out"
    return safe_text(f"{what}: refused, and the sandbox was stopped (audit.canaries)")


def _pending_canary(proxy: StandbyProxy) -> str | None:
    """A `canary` line the proxy sent that is still unread when the command ends (its request was refused, it
    exited at once). Other lines then no longer matter: the run is over."""
    try:
        data = proxy.control.recv(65536, socket.MSG_DONTWAIT)
    except (BlockingIOError, OSError):
        return None
    lines = [line for line in data.decode("ascii", "replace").splitlines() if line.startswith("canary ")]
    return canary_message(lines[0]) if lines else None


def wait(
    jail: Jail,
    launched: Launched,
    proxy: StandbyProxy,
    relay: TerminalRelay | None = None,
    updates: PolicyUpdates | None = None,
    asking: Asking | None = None,
) -> Outcome:
    selector = selectors.DefaultSelector()
    jail_exit, proxy_exit = ExitNotifier(launched.pid), ExitNotifier(proxy.pid)
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    wake_write.setblocking(False)
    handled = (*FORWARDED_SIGNALS, signal.SIGUSR1, *((signal.SIGWINCH,) if relay is not None else ()))
    previous = {s: signal.signal(s, lambda *_: None) for s in handled}
    old_wakeup = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
    selector.register(jail_exit.fileno(), selectors.EVENT_READ, "jail")
    selector.register(proxy_exit.fileno(), selectors.EVENT_READ, "proxy")
    selector.register(proxy.control, selectors.EVENT_READ, "proxy_status")
    selector.register(wake_read, selectors.EVENT_READ, "signal")
    if relay is not None:
        relay.register(selector)
    if updates is not None:
        updates.register(selector)
    if asking is not None:
        asking.register(selector)
    received: int | None = None
    tripped: str | None = None  # audit.canaries: what the proxy said of the first canary it saw leaving
    forced = False
    deadline: float | None = None
    started = time.monotonic()
    try:
        while True:
            ends = [t for t in (deadline, asking.next_deadline() if asking else None) if t is not None]
            events = selector.select(max(0.0, min(ends) - time.monotonic()) if ends else None)
            if asking is not None:
                asking.expire()  # held requests past network.ask.timeoutSeconds are denied
            if not events and deadline is not None and time.monotonic() >= deadline:
                log.warning("run.grace_expired", seconds=GRACE_SECONDS)
                os.kill(launched.pid, signal.SIGKILL)  # bwrap's death takes the whole sandbox with it
                forced = True
                deadline = None
                continue
            for key, mask in events:
                match key.data:
                    case ("terminal", relay_event):
                        try:
                            relay_event(selector, mask)
                        except Escaped as e:  # `~.` or the user's terminal closed: hang the command up
                            assert relay is not None
                            log.debug("run.escape", how=str(e))
                            relay.say(f"{e}: the command is hung up, the run ends")
                            received = HANGUP
                            relay.signal_session(HANGUP)
                            jail.signal(launched, HANGUP)
                            deadline = deadline or time.monotonic() + GRACE_SECONDS
                    case ("ask", ask_event):
                        ask_event(selector, mask)
                    case "proxy_status":
                        data = proxy.control.recv(4096)
                        if not data:
                            selector.unregister(proxy.control)
                        for line in data.decode("ascii", "replace").splitlines():
                            if line == "ready":
                                log.debug("proxy.ready", after_ms=round((time.monotonic() - started) * 1000))
                            elif line.startswith("canary "):
                                if tripped is None:  # the command tried to send a decoy out: stopped at once
                                    tripped = canary_message(line)
                                    log.debug("run.canary_tripped", what=tripped)  # said at the end
                                    os.kill(launched.pid, signal.SIGKILL)  # bwrap's death takes the sandbox
                                    if relay is not None:
                                        relay.say(tripped)
                            elif asking is not None and asking.on_proxy_line(line):
                                continue
                            elif updates is not None:
                                updates.on_proxy_line(line)
                    case "control":
                        assert updates is not None
                        updates.from_control(selector)
                    case "signal":
                        for signum in wake_read.recv(64):
                            if signum == signal.SIGUSR1:  # netjail's own: re-read the settings file
                                if updates is not None:
                                    updates.from_signal()
                                continue
                            if signum == signal.SIGWINCH:
                                if relay is not None:
                                    relay.resize()
                                continue
                            log.debug("run.signal", signal=signal.Signals(signum).name)
                            jail.signal(launched, signal.Signals(signum))
                            if signum == signal.SIGINT:
                                # as a Ctrl-C would: the command decides what it means, no grace period
                                if relay is not None:
                                    relay.signal_foreground(signum)
                                continue
                            if relay is not None:
                                relay.signal_session(signum)
                            received = signum
                            deadline = deadline or time.monotonic() + GRACE_SECONDS
                    case "proxy":
                        code = proxy.process.wait()
                        reason: EndReason = "log_failed" if code == ProxyExit.LOG_FAILED else "proxy_failed"
                        message = (
                            "the flow log could not be written; the sandbox was stopped"
                            if reason == "log_failed"
                            else f"the proxy stopped unexpectedly (exit {code}); the sandbox was stopped"
                        )
                        jail.cleanup(launched)
                        return Outcome(
                            ExitStatus.NETJAIL_FAILED, reason, message=message, signal_received=received
                        )
                    case "jail":
                        _, wait_status = os.waitpid(launched.pid, 0)
                        launched.reaped = True
                        if relay is not None:
                            relay.drain()
                        status = jail.child_exit_status(launched, wait_status)
                        tripped = tripped or _pending_canary(proxy)  # said as the command ended
                        if tripped is not None:  # (killed by netjail: bwrap's own status says little)
                            return Outcome(ExitStatus.CANARY_TRIPPED, "canary_tripped", message=tripped)
                        if status is None:
                            return Outcome(
                                ExitStatus.NETJAIL_FAILED,
                                "setup_failed",
                                message="the jail could not be set up (bwrap failed)",
                            )
                        if received is not None:
                            # killed after the grace period: report the signal netjail itself was sent
                            status = 128 + received if forced else status
                            return Outcome(status, "interrupted", signal_received=received)
                        return Outcome(status, "signaled" if status > 128 else "exited")
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        selector.close()
        jail_exit.close()
        proxy_exit.close()
        wake_read.close()
        wake_write.close()
