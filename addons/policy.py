"""netjail's policy addon: allow or deny every flow by the settings' domain rules.
(Over 500 lines: one guarded hook for each point below, all feeding the one pure decision in netjail/policy.)

Usable on its own:  mitmdump -s addons/policy.py --set netjail_settings=settings.json

It judges at every point a name appears:
  client_connected a transparently captured connection: its original destination (a synthetic address from the
                   jail's resolver maps back to its name) becomes the connection's target
  http_connect     the CONNECT target, before any upstream connection or DNS lookup
  requestheaders   plain HTTP (absolute or origin form), and every request inside a tunnel: the Host header /
                   :authority and the TLS SNI must name the tunnel's host (no domain fronting)
  tls_clienthello  tlsTerminate.excludeDomains: such tunnels pass through without interception
  tcp_start        raw TCP inside a tunnel or a captured connection: judged as its target
  server_connect   the address actually dialed: resolved here, checked against the local-range guard, pinned
The verdict goes to `flow.metadata["netjail"]`; the recorder, not this addon, decides what to log. mitmproxy
logs and swallows exceptions raised in hooks and lets the flow continue, so every hook catches and denies.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

from mitmproxy import http, tcp, tls
from mitmproxy.connection import Client
from mitmproxy.proxy import mode_specs, server_hooks

from netjail.addons.settings_file import add_settings_option, configured_settings
from netjail.net.addresses import IPAddress, host_interface_addresses
from netjail.net.domains import Host, normalize_host
from netjail.net.resolver import server_lookup, system_lookup
from netjail.policy.decision import Policy, Verdict, deny, failed_closed, fold_header
from netjail.policy.proxy_settings import ProxySettings
from netjail.policy.synthetic import SyntheticAddresses
from netjail.records.schema import METADATA_KEY

log = logging.getLogger("netjail.policy.decision")

DENIED_HEADER = "X-Netjail-Denied"


def verdict_of(flow: http.HTTPFlow) -> dict[str, Any] | None:
    return flow.metadata.get(METADATA_KEY)


def absolute_form_authority(flow: http.HTTPFlow) -> str | None:
    """The authority of an HTTP/1 absolute-form request target (`GET http://other.test/ HTTP/1.1`) inside a
    tunnel: mitmproxy forwards it as sent, so it names a host as much as the Host header does. (HTTP/2's
    :authority is the Host header; the explicit proxy's own requests are sent origin-form.)"""
    request = flow.request
    if request.method == "CONNECT" or request.is_http2 or request.is_http3:
        return None
    return request.authority or None


def denial_response(verdict: Verdict, host: str, status: int = 403) -> http.Response:
    body = (
        f"netjail denied this request to {host}: {verdict.detail}\n"
        f"reason: {verdict.reason}  rule: {verdict.rule}\n"
    )
    return http.Response.make(
        status,
        body.encode(),
        {"Content-Type": "text/plain; charset=utf-8", DENIED_HEADER: verdict.reason, "Connection": "close"},
    )


def _guarded(on_error: Callable[..., None]):
    """Run a hook; if judging raises, apply `on_error(args…, verdict)` so the flow is denied, never let through."""

    def wrap(hook):
        if asyncio.iscoroutinefunction(hook):

            @functools.wraps(hook)
            async def guarded_async(self, *args):
                try:
                    return await hook(self, *args)
                except Exception as e:
                    log.exception("policy hook %s failed; denying", hook.__name__)
                    on_error(self, *args, failed_closed(e))

            return guarded_async

        @functools.wraps(hook)
        def guarded(self, *args):
            try:
                return hook(self, *args)
            except Exception as e:
                log.exception("policy hook %s failed; denying", hook.__name__)
                on_error(self, *args, failed_closed(e))

        return guarded

    return wrap


class NetjailPolicy:
    def __init__(
        self, synthetic: SyntheticAddresses | None = None, settings: ProxySettings | None = None
    ) -> None:
        self.given = settings  # validated by netjail's supervisor; a `netjail_settings` file replaces it
        self.policy: Policy | None = None
        # the jail resolver's name <-> synthetic address map (transparent capture); None under stock mitmdump
        self.synthetic = synthetic
        # client connection id -> (host, port) of its CONNECT tunnel, as judged
        self.tunnels: dict[str, tuple[Host, int]] = {}
        # client connection id -> (name, port) -> the verdict of its last dial there, for the flows that used it
        # (a flow's server_conn is not always the Server object that server_connect saw)
        self.dial_verdicts: dict[str, dict[tuple[str, int], Verdict]] = {}
        # (name as mitmproxy dials it, port) -> the address judged for it: what the name resolves to when dialed
        self.vetted: dict[tuple[str, int], IPAddress] = {}
        # client connection id -> the verdict that refused its raw TCP: flow.kill() does not stop raw TCP, so its
        # dial is refused (server_connect) and any byte that still comes is dropped (tcp_message)
        self.refused_raw: dict[str, Verdict] = {}
        # flow id -> (flow, host, port) of the raw TCP and WebSocket streams open now: a policy update has no
        # "next request" to judge them at, so it judges them itself (reload)
        self.open_streams: dict[str, tuple[http.HTTPFlow | tcp.TCPFlow, Host, int]] = {}
        self.closed_ws: set[str] = set()  # WebSocket flows a policy update closed: their messages are dropped
        # ask mode (addons/ask.py): (client id, host, port) -> the user's answer on a host no allowedDomains entry
        # covers, or None when there is none
        self.grants: Callable[[str, Host, int], Verdict | None] | None = None

    def load(self, loader) -> None:
        add_settings_option(loader)

    def configure(self, updated: set[str]) -> None:
        if "netjail_settings" not in updated:
            return
        settings = configured_settings(self.given)
        self.policy = None if settings is None else Policy(settings.network, host_interface_addresses())

    def reload(self, digest: str, settings: ProxySettings) -> int:
        """A policy update (netjail/run/updates.py): settings the supervisor validated (`digest`: its effective
        file's SHA-256) replace the network rules. Requests are judged at their next request as always; the
        streams open now (raw TCP, WebSockets) that the new rules no longer allow are closed. Returns how many
        streams were closed."""
        self.policy = Policy(settings.network, host_interface_addresses())
        closed = 0
        for flow_id, (flow, host, port) in list(self.open_streams.items()):
            try:
                verdict = self._destination(flow.client_conn.id, host, port)
                if (
                    verdict.allowed
                    and isinstance(flow, tcp.TCPFlow)
                    and self.policy.has_request_rules(host, port)
                ):
                    verdict = deny(
                        "opaque_tunnel",
                        "request-rules-need-http",
                        f"{host.name}:{port} now has request rules",
                    )
            except Exception as e:
                verdict = failed_closed(e)
            if verdict.allowed:
                continue
            closed += 1
            meta = flow.metadata.setdefault(METADATA_KEY, {})
            meta["detail"] = f"closed by a policy update ({digest[:16]}): {verdict.detail or verdict.reason}"
            if isinstance(flow, tcp.TCPFlow):
                self.refused_raw[flow.client_conn.id] = verdict
            else:
                self.closed_ws.add(flow_id)
            self.open_streams.pop(flow_id, None)
            flow.kill()
        return closed

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        host = self.tunnels.get(flow.client_conn.id)
        judged = (verdict_of(flow) or {}).get("judged_host")
        try:
            name = host[0] if host and not judged else normalize_host(judged or flow.request.host)
        except Exception:
            return
        self.open_streams[flow.id] = (flow, name, flow.request.port)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if flow.id in self.closed_ws and flow.websocket is not None and flow.websocket.messages:
            flow.websocket.messages[-1].drop()

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self.open_streams.pop(flow.id, None)
        self.closed_ws.discard(flow.id)

    # -- helpers ----------------------------------------------------------------------------------------------

    def _policy(self) -> Policy:
        if self.policy is None:
            raise RuntimeError("netjail_settings is not set: every flow is denied")
        return self.policy

    def _deny_flow(self, flow: http.HTTPFlow, verdict: Verdict, host: Host | None = None) -> None:
        self._mark(flow, verdict, **({"judged_host": host.name} if host else {}))
        flow.response = denial_response(verdict, host.name if host else flow.request.host)

    def _mark(self, flow: http.HTTPFlow, verdict: Verdict, **extra: Any) -> None:
        flow.metadata[METADATA_KEY] = verdict.as_dict() | extra
        level = logging.INFO if verdict.allowed else logging.WARNING
        shown = extra.get("judged_host", flow.request.host)
        log.log(
            level, "%s %s:%s %s (%s)", verdict.verdict, shown, flow.request.port, verdict.reason, verdict.rule
        )

    def _judge_target(self, host_text: str, port: int, client_id: str = "") -> tuple[Host | None, Verdict]:
        host = self._policy().parse(host_text)
        if isinstance(host, Verdict):
            return None, host
        return host, self._destination(client_id, host, port)

    def _destination(self, client_id: str, host: Host, port: int) -> Verdict:
        """The domain lists' verdict, or, for a host they do not cover, what the user answered in ask mode."""
        verdict = self._policy().judge_destination(host, port)
        if verdict.reason == "not_allowed" and self.grants is not None:
            return self.grants(client_id, host, port) or verdict
        return verdict

    def _on_flow_error(self, flow: http.HTTPFlow, verdict: Verdict) -> None:
        self._deny_flow(flow, verdict)

    def _remember_dial(
        self, data: server_hooks.ServerConnectionHookData, name: str, port: int, verdict: Verdict
    ) -> None:
        self.dial_verdicts.setdefault(data.client.id, {})[(name.lower(), port)] = verdict

    def _on_server_error(self, data: server_hooks.ServerConnectionHookData, verdict: Verdict) -> None:
        if data.server.address is not None:
            # under the name judged, as _attach_dial_verdict looks it up: a synthetic address maps back to its name
            name = self._named(str(data.server.address[0]))
            self._remember_dial(data, name, int(data.server.address[1]), verdict)
        data.server.error = f"netjail: {verdict.detail}"

    def _on_clienthello_error(self, data: tls.ClientHelloData, verdict: Verdict) -> None:
        data.ignore_connection = False  # intercept, so the request inside is judged (and denied) normally

    def _named(self, address: str) -> str:
        """A destination address as the policy must see it: a synthetic address goes back to its name."""
        if self.synthetic is None:
            return address
        try:
            name = self.synthetic.name_for(ipaddress.ip_address(address))
        except ValueError:
            return address
        return name or address

    def connection_verdict(self, client: Client) -> dict[str, Any] | None:
        """For the recorder: the verdict on a captured connection that carried no flow at all."""
        tunnel = self.tunnels.get(client.id)
        if tunnel is None or self.policy is None:
            return None
        host, port = tunnel
        return self._destination(client.id, host, port).as_dict() | {"judged_host": host.name}

    # -- hooks ------------------------------------------------------------------------------------------------

    def client_connected(self, client: Client) -> None:
        """A transparently captured connection: its original destination is the tunnel target. Judged again at
        every later point (request, TLS, dial); nothing is dialed here."""
        if not isinstance(client.proxy_mode, mode_specs.TransparentMode) or not client.sockname:
            return
        try:
            address, port = str(client.sockname[0]), int(client.sockname[1])
            host = self._policy().parse(self._named(address))
        except Exception:
            log.exception("cannot judge a captured connection")
            client.error = "netjail: cannot judge this connection"
            return
        if isinstance(host, Verdict):
            client.error = f"netjail: {host.detail}"
            return
        self.tunnels[client.id] = (host, port)

    def _tunnel_limit(self, host: Host, port: int) -> Verdict | None:
        """tlsTerminate.maxTunnels: a deny when that many intercepted tunnels are open (excluded hosts aside)."""
        policy = self._policy()
        if policy.max_tunnels is None or policy.tls_excluded(host, port):
            return None
        open_tunnels = sum(1 for h, p in self.tunnels.values() if not policy.tls_excluded(h, p))
        if open_tunnels < policy.max_tunnels:
            return None
        return deny(
            "tunnel_limit",
            "tlsTerminate.maxTunnels",
            f"{policy.max_tunnels} tunnels are open already (network.tlsTerminate.maxTunnels); "
            "close one, or retry when one has closed",
        )

    @_guarded(_on_flow_error)
    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        host, verdict = self._judge_target(flow.request.host, flow.request.port, flow.client_conn.id)
        if not verdict.allowed or host is None:
            self._deny_flow(flow, verdict, host)
            return
        if (limit := self._tunnel_limit(host, flow.request.port)) is not None:
            self._mark(flow, limit, judged_host=host.name)
            flow.response = denial_response(limit, host.name, status=503)
            return
        self.tunnels[flow.client_conn.id] = (host, flow.request.port)
        self._mark(flow, verdict, judged_host=host.name)

    @_guarded(_on_flow_error)
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error:
            return
        policy = self._policy()
        tunnel = self.tunnels.get(flow.client_conn.id)
        if tunnel is not None:
            host, port = tunnel
            verdict = self._destination(
                flow.client_conn.id, host, port
            )  # every request carries its own verdict
        else:
            parsed, verdict = self._judge_target(flow.request.host, flow.request.port, flow.client_conn.id)
            if parsed is None:
                self._deny_flow(flow, verdict)
                return
            host, port = parsed, flow.request.port
        if verdict.allowed:
            verdict = (
                policy.judge_named(host, flow.request.host_header, "host")
                or policy.judge_named(host, absolute_form_authority(flow) if tunnel else None, "host")
                or policy.judge_named(host, flow.client_conn.sni if tunnel else None, "sni")
                or verdict
            )
        if verdict.allowed and flow.request.method != "CONNECT":
            # network.rules narrow an allowed host; judged on the target as sent (bytes), never a rewrite of it
            target = flow.request.data.path.decode("latin-1")
            verdict = policy.judge_request(host, port, flow.request.method, target) or verdict
        if not verdict.allowed:
            self._deny_flow(flow, verdict, host)
            return
        self._mark(flow, verdict, judged_host=host.name)

    @_guarded(_on_clienthello_error)
    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        tunnel = self.tunnels.get(data.context.client.id)
        if tunnel is None:
            return
        host, port = tunnel
        policy = self._policy()
        sni = data.client_hello.sni
        if policy.refuse_opaque_tunnels:
            return  # every tunnel is intercepted, excluded hosts too: nothing passes unseen
        if policy.tls_excluded(host, port) and policy.judge_named(host, sni, "sni") is None:
            data.ignore_connection = True

    @_guarded(_on_server_error)
    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if data.server.error:
            return
        if (refused := self.refused_raw.get(data.client.id)) is not None:
            data.server.error = f"netjail: {refused.detail}"
            return
        assert data.server.address is not None
        name, port = self._named(str(data.server.address[0])), int(data.server.address[1])
        tunnel = self.tunnels.get(data.client.id)
        policy = self._policy()
        host, verdict = self._judge_target(name, port, data.client.id)
        if verdict.allowed and host is not None and tunnel is not None and tunnel[0].name != host.name:
            verdict = deny(
                "host_mismatch", "fronting-guard", f"dial to {host.name} inside a tunnel to {tunnel[0].name}"
            )
        if verdict.allowed and host is not None and data.server.sni and host.ip is None:
            verdict = policy.judge_named(host, data.server.sni, "sni") or verdict
        if not verdict.allowed or host is None:
            self._on_server_error(data, verdict)
            return
        try:
            candidates = await self._addresses(policy, host, port)
        except OSError as e:
            # an allowed name that does not resolve is an upstream failure, not a policy decision
            data.server.error = f"could not resolve {host.name}: {e}"
            return
        address, verdict = self._first_allowed(policy, host, port, candidates)
        if address is None:
            self._on_server_error(data, verdict)
            return
        # Dial exactly the address that was judged; the name stays the TLS server name.
        self._remember_dial(data, name, port, verdict)
        dialed = str(data.server.address[0])
        if dialed != name:
            data.server.address = (
                str(address),
                port,
            )  # a synthetic address (captured connection): dial the real one
        else:
            self.vetted[(dialed, port)] = (
                address  # mitmproxy keeps the name (and pools by it); resolution is pinned
            )
        if host.ip is None:
            data.server.sni = host.name

    def running(self) -> None:
        """Every name mitmproxy dials resolves to the address judged for it in server_connect, and only to that:
        the loop's getaddrinfo is replaced, so a dial that was not judged finds no address at all."""
        loop = asyncio.get_running_loop()
        if getattr(loop.getaddrinfo, "netjail_vetted", False):
            return

        async def vetted_getaddrinfo(host, port, *args, **kwargs):
            name = host.decode() if isinstance(host, bytes) else str(host)
            address = self.vetted.get((name, int(port or 0)))
            if address is None:
                raise socket.gaierror(
                    socket.EAI_NONAME, f"netjail: {name}:{port} was not judged; not resolving it"
                )
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sockaddr = (
                (str(address), int(port), 0, 0) if family == socket.AF_INET6 else (str(address), int(port))
            )
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

        vetted_getaddrinfo.netjail_vetted = True  # type: ignore[attr-defined]
        loop.getaddrinfo = vetted_getaddrinfo  # type: ignore[method-assign]

    @staticmethod
    async def _addresses(policy: Policy, host: Host, port: int) -> list[IPAddress]:
        if host.ip is not None:
            return [host.ip]
        if (pinned := policy.pinned_address(host)) is not None:
            return [pinned]
        if policy.resolver is not None:
            return await server_lookup(host.name, policy.resolver)
        return await system_lookup(host.name, port)

    @staticmethod
    def _first_allowed(
        policy: Policy, host: Host, port: int, candidates: list[IPAddress]
    ) -> tuple[IPAddress | None, Verdict]:
        first_denial: Verdict | None = None
        for address in candidates:
            verdict = policy.judge_address(host, address, port)
            if verdict.allowed:
                return address, verdict
            first_denial = first_denial or verdict
        return None, first_denial or deny("not_allowed", "dns", f"{host.name} has no address")

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        """Raw TCP inside a tunnel (not TLS, not HTTP): judged as the tunnel's host and port, and recorded."""
        try:
            tunnel = self.tunnels.get(flow.client_conn.id)
            if tunnel is None:
                raise RuntimeError("raw TCP outside any judged tunnel")
            host, port = tunnel
            policy = self._policy()
            verdict = self._destination(flow.client_conn.id, host, port)
            if verdict.allowed and policy.has_request_rules(host, port):
                verdict = deny(
                    "opaque_tunnel",
                    "request-rules-need-http",
                    f"{host.name}:{port} has network.rules, which judge HTTP requests, and this connection is not "
                    "HTTP; only HTTP(S) requests can reach this host",
                )
            elif verdict.allowed and policy.refuse_opaque_tunnels:
                verdict = deny(
                    "opaque_tunnel",
                    "refuseOpaqueTunnels",
                    f"{host.name}:{port}: this connection is not HTTP, and network.refuseOpaqueTunnels refuses "
                    "every tunnel netjail cannot see into. Remove that setting to let it through.",
                )
            flow.metadata[METADATA_KEY] = verdict.as_dict() | {"judged_host": host.name}
        except Exception as e:
            verdict = failed_closed(e)
            flow.metadata[METADATA_KEY] = verdict.as_dict()
        if not verdict.allowed:
            self.refused_raw[flow.client_conn.id] = verdict
            flow.kill()
        else:
            self.open_streams[flow.id] = (flow, host, port)

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        if flow.client_conn.id in self.refused_raw and flow.messages:
            flow.messages[-1].content = b""

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """network.stripResponseHeaders: those headers never reach the client (an error drops the response)."""
        try:
            stripped = self.policy.stripped_response_headers if self.policy else frozenset()
            if stripped and flow.response is not None:
                for name in {n for n in flow.response.headers if fold_header(n) in stripped}:
                    del flow.response.headers[name]
        except Exception:
            log.exception("cannot strip response headers; dropping the response")
            flow.kill()

    def response(self, flow: http.HTTPFlow) -> None:
        self._attach_dial_verdict(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._attach_dial_verdict(flow)

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        self._attach_dial_verdict(flow)

    def tcp_error(self, flow: tcp.TCPFlow) -> None:
        self.open_streams.pop(flow.id, None)
        self._attach_dial_verdict(flow)

    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        self.open_streams.pop(flow.id, None)
        self._attach_dial_verdict(flow)

    def _attach_dial_verdict(self, flow: http.HTTPFlow | tcp.TCPFlow) -> None:
        """A deny in server_connect has no flow to mark: carry it over to the flow whose dial it refused."""
        if isinstance(flow, http.HTTPFlow):
            target = (flow.request.host, flow.request.port)
        elif flow.server_conn.address is not None:
            target = (str(flow.server_conn.address[0]), int(flow.server_conn.address[1]))
        else:
            return
        dial = self.dial_verdicts.get(flow.client_conn.id, {}).get(
            (self._named(target[0]).lower(), target[1])
        )
        if dial is None:
            return
        current = flow.metadata.get(METADATA_KEY, {})
        if not dial.allowed:
            flow.metadata[METADATA_KEY] = current | dial.as_dict()
        elif flow.server_conn.peername:
            flow.metadata[METADATA_KEY] = current | {"address": flow.server_conn.peername[0]}

    def client_disconnected(self, client: Client) -> None:
        self.tunnels.pop(client.id, None)
        self.dial_verdicts.pop(client.id, None)
        self.refused_raw.pop(client.id, None)


addons = [NetjailPolicy()]
