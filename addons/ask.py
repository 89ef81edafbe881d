"""Ask mode in the proxy (network.ask): a connection or request to a host that no allowedDomains entry covers, and
that no deniedDomains entry denies, is held while the supervisor puts the question to the user
(netjail/run/ask.py), and judged by the answer.

It runs before the policy addon, at the first point each kind of connection names its host: `client_connected`
(a transparently captured connection, whose synthetic address the jail's resolver handed out for the unknown
name), `http_connect` (a CONNECT), `requestheaders` (a plain-HTTP request to the explicit proxy). The policy
addon then asks `granted` for its verdict wherever it judges the host (NetjailPolicy.grants), so the answer holds
at every later point — the requests in the tunnel, the dial, raw TCP. Questions travel over the proxy's control
socket: `ask {json}` out, `{"answer": {...}}` back (netjail/proxy/process.py). Identical questions in flight
share one answer. A hook that fails grants nothing, so the policy denies (fail closed); a question the
supervisor never answers is denied after its timeout.

Needs netjail's supervisor to ask anyone: under stock mitmdump there is no such addon, and a host not allowed is
denied as always.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from mitmproxy import http
from mitmproxy.connection import Client
from mitmproxy.proxy import mode_specs

from netjail.addons.policy import NetjailPolicy
from netjail.net.domains import Host
from netjail.policy.decision import Verdict, allow, deny

log = logging.getLogger("netjail.ask")

ANSWERS = ("once", "run", "always", "deny")
# past the supervisor's own timeout (it answers deny then): only a supervisor that never answers reaches it
BACKSTOP_SECONDS = 10.0


@dataclass
class Question:
    id: str
    host: Host
    port: int
    answer: asyncio.Future[tuple[str, str]]


class NetjailAsk:
    def __init__(self, policy: NetjailPolicy, send: Callable[[bytes], None]) -> None:
        self.policy = policy
        self.send = send  # a line to the supervisor
        self.for_run: dict[tuple[str, int], str] = {}  # (host, port) -> "run" or "always"
        self.for_connection: dict[str, set[tuple[str, int]]] = {}  # client id -> answered once
        self.denied: dict[str, dict[tuple[str, int], str]] = {}  # client id -> (host, port) -> who denied
        self.in_flight: dict[tuple[str, int], Question] = {}
        self.by_id: dict[str, Question] = {}
        self.count = 0
        policy.grants = self.granted

    # -- what the policy addon asks -------------------------------------------------------------------------

    def granted(self, client_id: str, host: Host, port: int) -> Verdict | None:
        key = (host.name, port)
        if (scope := self.for_run.get(key)) is not None:
            return allow(f"ask:{scope}")
        if key in self.for_connection.get(client_id, ()):
            return allow("ask:once")
        if (who := self.denied.get(client_id, {}).get(key)) is not None:
            return deny(
                "not_allowed",
                "default-deny",
                f"{host.name} is not in network.allowedDomains; asked, it was denied ({who}). "
                f"To allow it, add {host.name!r} to network.allowedDomains.",
            )
        return None

    # -- the supervisor's answers -----------------------------------------------------------------------------

    def on_answer(self, message: dict) -> None:
        question = self.by_id.get(str(message.get("id")))
        answer = message.get("answer")
        if question is None or question.answer.done():
            return
        question.answer.set_result(
            (answer if answer in ANSWERS else "deny", str(message.get("by") or "unknown"))
        )

    # -- hooks --------------------------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.policy.policy is not None and self.policy.policy.asks

    async def client_connected(self, client: Client) -> None:
        if not self.enabled or not isinstance(client.proxy_mode, mode_specs.TransparentMode):
            return
        try:
            name = self.policy._named(str(client.sockname[0]))
            port = int(client.sockname[1])
        except Exception:
            return  # the policy addon denies what it cannot judge
        await self._hold(client.id, name, port, f"connect {name}:{port}")

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        if not self.enabled or flow.response:
            return
        host, port = flow.request.host, flow.request.port
        await self._hold(flow.client_conn.id, host, port, f"CONNECT {host}:{port}")

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not self.enabled or flow.response or flow.error or flow.request.method == "CONNECT":
            return
        if flow.client_conn.id in self.policy.tunnels:
            return  # asked when the tunnel or captured connection opened
        request = flow.request
        shown = (
            f"{request.method} {request.scheme}://{request.host}:{request.port}{request.path.split('?')[0]}"
        )
        await self._hold(flow.client_conn.id, request.host, request.port, shown)

    def client_disconnected(self, client: Client) -> None:
        self.for_connection.pop(client.id, None)
        self.denied.pop(client.id, None)

    # -- holding ----------------------------------------------------------------------------------------------

    async def _hold(self, client_id: str, host_text: str, port: int, request: str) -> None:
        """Hold this connection until the user answers about host:port. Any failure grants nothing."""
        try:
            policy = self.policy.policy
            if policy is None:
                return
            host = policy.parse(host_text)
            if isinstance(host, Verdict) or host.ip is not None:
                return
            if policy.judge_destination(host, port).reason != "not_allowed":
                return  # allowed, denied by an entry, or another port of an allowed entry: nothing to ask
            if self.granted(client_id, host, port) is not None:
                return
            question = self._question(host, port, request)
            started = time.monotonic()
            try:
                answer, who = await asyncio.wait_for(
                    asyncio.shield(question.answer), policy.ask_timeout + BACKSTOP_SECONDS
                )
            except TimeoutError:
                answer, who = "deny", "timeout"
            log.info("ask %s %s:%s %s by %s after %.1fs", question.id, host.name, port, answer, who,
                     time.monotonic() - started)  # fmt: skip
            self._apply(question, client_id, answer, who)
        except Exception:
            log.exception("ask failed; the request is denied")

    def _question(self, host: Host, port: int, request: str) -> Question:
        key = (host.name, port)
        if (question := self.in_flight.get(key)) is not None:
            return question
        self.count += 1
        question = Question(f"q{self.count}", host, port, asyncio.get_running_loop().create_future())
        self.in_flight[key] = question
        self.by_id[question.id] = question
        message = {"id": question.id, "host": host.name, "port": port, "request": request}
        self.send(b"ask " + json.dumps(message).encode() + b"\n")
        return question

    def _apply(self, question: Question, client_id: str, answer: str, who: str) -> None:
        key = (question.host.name, question.port)
        self.in_flight.pop(key, None)
        self.by_id.pop(question.id, None)
        if answer in ("run", "always"):
            self.for_run[key] = answer
        elif answer == "once":
            self.for_connection.setdefault(client_id, set()).add(key)
        else:
            self.denied.setdefault(client_id, {})[key] = who
