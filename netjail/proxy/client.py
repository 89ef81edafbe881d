"""The supervisor's handle on the proxy process (netjail/proxy/process.py).

Spawned before anything else a run does, so mitmproxy's import overlaps reading the settings, creating the CA and
setting up the jail; configured once the jail's sockets exist. Light on purpose: this module is imported on every
run's critical path.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netjail.policy.proxy_settings import ProxySettings

STOP_SECONDS = 10.0


class ProxyFailed(Exception):
    pass


class StandbyProxy:
    def __init__(self) -> None:
        self.killed = False
        self.control, remote = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",  # isolated: nothing in the working directory or the environment can shadow its modules
                    "-m",
                    "netjail.proxy.process",
                    "--control-fd",
                    str(remote.fileno()),
                    "--parent",
                    str(os.getpid()),
                ],
                pass_fds=[remote.fileno()],
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C meant for the command must not reach the proxy
                close_fds=True,
            )
        finally:
            remote.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def configure(
        self, config: dict, sockets: dict[str, list[socket.socket]], settings: ProxySettings
    ) -> None:
        """Hand over the run's configuration, its validated settings and the sockets to serve (the caller then
        closes its copies). One JSON line: the proxy reads up to its newline."""
        roles = [role for role, socks in sockets.items() for _ in socks]
        fds = [s.fileno() for socks in sockets.values() for s in socks]
        value = base64.b64encode(settings.dumps()).decode()
        message = json.dumps(config | {"roles": roles, "proxy_settings": value}).encode() + b"\n"
        try:
            sent = socket.send_fds(self.control, [message], fds)
            self.control.sendall(message[sent:])
        except OSError as e:
            raise ProxyFailed(f"the proxy process is gone ({e})") from e

    def stop(self) -> int:
        """Let the proxy finish its records (mitmproxy's `done` hook), then make sure it is gone. (Before it is
        serving, SIGTERM simply ends it.)"""
        self.control.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.killed = True  # flows still open have no record: the run says so (run_end `proxy_killed`)
            self.process.kill()
            self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """For a run that never started (bad settings, no jail): nothing may be left behind."""
        self.control.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
