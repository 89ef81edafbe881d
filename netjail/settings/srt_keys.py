"""Every key of srt's (sandbox-runtime 0.0.81) settings schema, with netjail's verdict on it, and netjail's
own keys. docs/srt-compat.md is built from these tables; a test keeps the two equal.

A verdict is: honoured with srt's meaning, accepted with a one-line warning (ignoring it cannot weaken the
jail), or refused (honouring it silently would weaken the jail, or it cannot be done). Keys neither srt nor
netjail knows are refused by the models, so a typo never turns into a silently dropped rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from netjail.settings.fields import field_for_alias
from netjail.settings.models import Settings


@dataclass(frozen=True)
class Verdict:
    path: str  # dotted, camelCase, "[]" for array items
    verdict: Literal["honoured", "warned", "refused"]
    why: str


# path | verdict | why  ("[]" = each item of an array; a "see X" line shares X's verdict and reason)
_SRT_TABLE = """
network                                  | honoured | required, as in srt
network.allowedDomains                   | honoured | hosts, *.wildcards, IP literals, optional :port; netjail adds "@preset" entries
network.deniedDomains                    | honoured | checked before allowedDomains; "*" denies everything
network.deniedDomainReasons              | honoured | shown in the denial and the flow record; each key must be a deniedDomains entry
network.strictAllowlist                  | honoured | true never asks (a host not allowed is denied); netjail asks only with network.ask.enabled, which true contradicts (refused)
network.deniedResolvedAddresses          | honoured | added to the ranges an allowed name may not resolve to
network.allowUnixSockets                 | warned   | ignored on Linux (as by srt), where Unix sockets stay blocked; honoured on macOS: these socket paths may be bound and connected
network.allowAllUnixSockets              | honoured | true lets the command create Unix sockets (on macOS: bind and connect any path but the system resolver's)
network.allowLocalBinding                | honoured | true lets the command listen on its own loopback (on macOS, which has none of its own: the host's)
network.allowMachLookup                  | warned   | ignored on Linux, which has no XPC services; honoured on macOS, except DNS and other egress services unless named exactly
network.httpProxyPort                    | refused  | an external proxy would replace netjail's: nothing would be judged or recorded
network.socksProxyPort                   | refused  | an external proxy would replace netjail's: nothing would be judged or recorded
network.mitmProxy                        | refused  | traffic handed to another proxy would leave netjail's policy and recorder
network.mitmProxy.socketPath             | refused  | see network.mitmProxy
network.mitmProxy.domains                | refused  | see network.mitmProxy
network.filterRequest                    | refused  | a JavaScript callback of srt's library: no JSON value is valid (srt refuses it too)
network.allowPlaintextHeaderSet          | warned   | ignored: netjail's proxy sets no request headers (filterRequest is refused), in cleartext or otherwise
network.stripResponseHeaders             | honoured | these response headers never reach the command (case, '-', '_' and '.' folded)
network.refuseOpaqueTunnels              | honoured | raw TCP in any tunnel or captured connection is refused (opaque_tunnel), and excludeDomains hosts are intercepted too
network.requireHostMatch                 | honoured | always on, whatever the value: a Host header, SNI or absolute-form authority naming another host is denied (403 host_mismatch; srt answers 421)
network.ambiguousRequestTarget           | honoured | whatever the value, targets are forwarded as spelled and network.rules judge every reading of a path, denying ambiguous ones (docs/policy.md)
network.tlsTerminate                     | honoured | netjail always terminates TLS (to judge Host and SNI, and record); this block tunes it
network.tlsTerminate.caCertPath          | warned   | ignored: netjail mints a fresh CA per run, whose key never leaves the run
network.tlsTerminate.caKeyPath           | warned   | ignored: netjail mints a fresh CA per run, whose key never leaves the run
network.tlsTerminate.excludeDomains      | honoured | tunnelled without termination, still judged by name and recorded
network.tlsTerminate.extraCaCertPaths    | honoured | added to the jail's trust bundle; each file must exist and hold a certificate
network.tlsTerminate.maxTunnels          | honoured | at most that many CONNECT tunnels are intercepted at once; past it a CONNECT gets 503 (tunnel_limit); excluded hosts do not count
network.tlsTerminate.handshakeTimeoutMs  | warned   | ignored: mitmproxy's own connection timeouts apply
network.parentProxy                      | refused  | netjail dials upstream itself; ignoring it would route around your proxy ({} is accepted)
network.parentProxy.http                 | refused  | see network.parentProxy
network.parentProxy.https                | refused  | see network.parentProxy
network.parentProxy.noProxy              | honoured | with no parent proxy every connection is direct, which is what it asks
filesystem                               | honoured | required, as in srt
filesystem.disabled                      | refused  | true would drop every filesystem rule; false is accepted
filesystem.denyRead                      | honoured | hidden inside the jail
filesystem.denyRead[].path               | honoured | {"path": ..., "literal": true} names that path and is never a pattern, whether or not it exists
filesystem.denyRead[].literal            | honoured | see filesystem.denyRead[].path
filesystem.allowRead                     | honoured | readable again inside a denyRead region
filesystem.allowRead[].path              | honoured | see filesystem.denyRead[].path
filesystem.allowRead[].literal           | honoured | see filesystem.denyRead[].path
filesystem.allowWrite                    | honoured | the only writable paths (besides the jail's private /tmp)
filesystem.allowWrite[].path             | honoured | see filesystem.denyRead[].path
filesystem.allowWrite[].literal          | honoured | see filesystem.denyRead[].path
filesystem.denyWrite                     | honoured | read-only even inside allowWrite
filesystem.denyWrite[].path              | honoured | see filesystem.denyRead[].path
filesystem.denyWrite[].literal           | honoured | see filesystem.denyRead[].path
filesystem.allowGitConfig                | honoured | true leaves .git/config writable (.git/hooks stays protected)
credentials                              | honoured | "deny" keeps a source from the command; "mask" shows it a placeholder that the proxy swaps for the real value toward the credential's inject hosts (docs/credentials.md)
credentials.files                        | honoured | each path is added to filesystem.denyRead; a masked file is then bound over it as a copy with placeholders
credentials.files[].path                 | honoured | "deny": a path or glob, as in denyRead; "mask": one file (a directory or glob is refused, as srt refuses a directory)
credentials.files[].mode                 | honoured | "deny" as in srt; "mask" as in srt on Linux (the file reads with placeholders in place of the secrets); on macOS the file stays denied, as srt does
credentials.files[].extract              | honoured | Python regular expressions in ASCII mode, JavaScript (?<name>) and \\k<name> rewritten; group 1 is the secret; no group, \\p{}, \\u{}, \\cX, [] or (?P) are refused
credentials.files[].onExtractNoMatch     | honoured | "error" (netjail's default; srt's is "warn") refuses the run; "deny" leaves the file unreadable; "warn" too, with a warning (srt leaves the real file readable)
credentials.files[].decode               | honoured | "jwt": candidates (extract's, or anything shaped like a JWT) that verify are replaced by a fake JWT, as in srt
credentials.files[].maskClaims           | honoured | the named string claims get their own placeholders inside a rebuilt token, as in srt; refused without decode or when empty
credentials.files[].maskDuplicates       | honoured | every other verbatim occurrence of a masked value in the file is masked too
credentials.files[].injectHosts          | honoured | default network.allowedDomains (ports dropped); each must be covered by allowedDomains and lie outside tlsTerminate.excludeDomains; [] is refused
credentials.envVars                      | honoured | each variable is withheld ("deny") or masked ("mask"), whatever the default variables or envPassthrough say
credentials.envVars[].name               | honoured | refused if envPassthrough lists it too
credentials.envVars[].mode               | honoured | "deny" withholds it; "mask" sets a placeholder of the same length, character classes and prefix; an unset variable stays unset (srt)
credentials.envVars[].extract            | honoured | see credentials.files[].extract
credentials.envVars[].onExtractNoMatch   | honoured | "error" (netjail's default; srt's is "warn") refuses the run; "deny" withholds the variable; "warn" too, with a warning (srt passes the real value)
credentials.envVars[].decode             | honoured | "jwt": the value must verify as a JWT and is replaced by a fake one; one that does not follows onExtractNoMatch (srt passes it unmasked)
credentials.envVars[].maskClaims         | honoured | see credentials.files[].maskClaims
credentials.envVars[].injectHosts        | honoured | see credentials.files[].injectHosts
credentials.allowPlaintextInject         | honoured | true lets the proxy inject into plain-HTTP requests to inject hosts; by default only TLS connections netjail terminated get real values
credentials.awsPairs                     | honoured | requests signed (AWS Signature V4) with the placeholder key id toward its inject hosts are signed again with the real keys (botocore's signer); AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN masked whole are paired automatically, as in srt
credentials.awsPairs[].accessKeyIdVar    | honoured | a whole-value masked envVars entry; its injectHosts say where re-signing happens
credentials.awsPairs[].secretAccessKeyVar | honoured | a whole-value masked envVars entry, each variable in one slot only
credentials.awsPairs[].sessionTokenVar   | honoured | the real token is sent as x-amz-security-token on re-signed requests
credentials.sigv4                        | honoured | what happens to signatures that cannot be re-signed soundly; "deny" (default, as in srt) answers 403, "passthrough" forwards them as signed
credentials.sigv4.streaming              | honoured | signed aws-chunked uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD…); STREAMING-UNSIGNED-PAYLOAD-TRAILER, the SDKs' default, is re-signed
credentials.sigv4.presigned              | honoured | presigned URLs signed with the placeholder keys (presigned URLs by other keys pass untouched)
credentials.sigv4.sigv4a                 | honoured | SigV4A (ECDSA) signatures, which have no shared key to sign again with
ignoreViolations                         | warned   | ignored: netjail records every denial in the run's flow log; nothing is suppressed
enableWeakerNestedSandbox                | refused  | true asks for a weaker jail, which netjail does not offer; false is accepted
allowNestedUserNamespaces                | refused  | true would let the command unmount the read-only binds that enforce denyWrite; false is accepted
enableWeakerNetworkIsolation             | refused  | true asks for weaker network isolation, which netjail does not offer; false is accepted
allowAppleEvents                         | refused  | true would let the command launch programs outside the jail; false is accepted
ripgrep                                  | warned   | ignored: netjail finds the mandatory-deny files itself
ripgrep.command                          | warned   | see ripgrep
ripgrep.args                             | warned   | see ripgrep
ripgrep.argv0                            | warned   | see ripgrep
mandatoryDenySearchDepth                 | honoured | stricter than srt: protected names are found at every depth, so the value (1-10) no longer limits the scan
allowPty                                 | honoured | true gives the command a pseudo-terminal (macOS-only in srt)
seccomp                                  | warned   | ignored: netjail does not use srt's apply-seccomp helper
seccomp.applyPath                        | warned   | see seccomp
seccomp.argv0                            | warned   | see seccomp
bwrapPath                                | honoured | the bubblewrap binary netjail runs instead of the one on PATH
socatPath                                | warned   | ignored: netjail does not bridge its proxy with socat
javaAgentJarPath                         | warned   | ignored: netjail points JVMs at its proxy with JAVA_TOOL_OPTIONS properties
windows                                  | warned   | ignored: Windows only; netjail runs on Linux and macOS
windows.sandboxUser                      | warned   | see windows
windows.sublayerGuid                     | warned   | see windows
windows.wfpSublayerGuid                  | warned   | see windows
windows.proxyPortRange                   | warned   | see windows
windows.srtWin                           | warned   | see windows
windows.srtWin.path                      | warned   | see windows
git                                      | warned   | ignored: the jail keeps your own uid, so git's ownership check passes anyway
git.safeDirectories                      | warned   | see git
"""

# netjail's own keys (not in srt): key | meaning
_NETJAIL_TABLE = """
$schema                  | ignored; lets an editor find docs/settings.schema.json
network.allowedDomains "@pip", "@npm" | presets: the index/registry hosts of this machine's pip or npm configuration
network.hosts            | pin a name to an address, like curl --resolve; the name may point anywhere, private ranges included
network.resolver         | upstream DNS server of netjail itself: "IP", "IP:port" or "[IPv6]:port"; default the system resolver
network.mode             | "enforce" (default) or "audit": record what would be denied but let it through (learn mode)
network.capture          | "auto" (default), "transparent" or "proxy-variables": how traffic that ignores proxy variables is handled
credentials.envVars[].pinHeaders, credentials.files[].pinHeaders | headers that must carry the placeholder on requests to an inject host (default authorization, x-api-key, api-key, private-token, x-auth-token; [] = off): the command cannot bring its own key
network.ask              | ask mode: a request to a host no allowedDomains entry covers is held and put to the user (terminal, netjail ask RUN, --agent-fd): once, this run, always, deny; timeoutSeconds (default 60) answers deny; agentChannel: also to the command itself on SANDBOX_AGENT_CHANNEL_FD, as srt --agent-channel, never always (docs/policy.md)
network.limits           | sizes past which a request is refused before it is parsed (431, 414, 400), and upload caps per request, host and run (413 or the stream is cut); docs/security.md
network.rules            | request rules: per host pattern, allow/deny entries on method and path (first match wins, then the default); they only narrow allowedDomains (docs/policy.md)
envPassthrough           | host environment variables passed into the jail; no other variable is
audit.secretEnv          | environment variables whose values the audit report looks for in recorded traffic
audit.secretFiles        | files whose contents the audit report looks for in recorded traffic
audit.canaries           | plant decoy credentials in the jail (environment and /run/secrets/deploy/credentials); one seen in egress is denied and stops the run (exit 122)
record.bodyCap           | bytes kept of each body in flows.mitm (default 1 MiB; 0 = none)
record.redactHeaders     | headers whose values are replaced before a flow is written
record.refusedWrites     | observe the writes the jail refuses (Linux: seccomp user notification; macOS: the violation log), named after the run and by why/learn (default true)
retention.maxAgeDays     | netjail runs --prune removes runs older than this many days
retention.maxTotalMB     | netjail runs --prune then removes the oldest runs until the rest take at most this many MB
"""


def _rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split(" | ")] for line in table.strip().splitlines()]


SRT_KEYS: tuple[Verdict, ...] = tuple(Verdict(p, v, why) for p, v, why in _rows(_SRT_TABLE))  # type: ignore[arg-type]
NETJAIL_KEYS: tuple[tuple[str, str], ...] = tuple((k, m) for k, m in _rows(_NETJAIL_TABLE))


def _values_at(root: BaseModel, path: str) -> list[tuple[str, Any]]:
    """Concrete (path, value) pairs for a table path such as "credentials.files[].extract"."""
    found: list[tuple[str, Any]] = [("", root)]
    for segment in path.split("."):
        many, alias = segment.endswith("[]"), segment.removesuffix("[]")
        step: list[tuple[str, Any]] = []
        for where, obj in found:
            hit = field_for_alias(type(obj), alias) if isinstance(obj, BaseModel) else None
            if hit is None:
                continue
            here = f"{where}.{alias}" if where else alias
            value = getattr(obj, hit[0])
            step += [(f"{here}[{i}]", v) for i, v in enumerate(value or [])] if many else [(here, value)]
        found = step
    return found


def _is_set(value: Any) -> bool:
    if isinstance(value, BaseModel):
        return any(_is_set(getattr(value, name)) for name in type(value).model_fields)
    return value not in (None, False, [], {}, "")


def _warning_roots() -> list[Verdict]:
    # One warning per subtree (ripgrep, not ripgrep.command as well); credential entries are handled apart.
    warned = [
        v
        for v in SRT_KEYS
        if v.verdict == "warned" and not v.path.startswith(("credentials.files[]", "credentials.envVars[]"))
    ]
    return [v for v in warned if not any(v.path.startswith((p.path + ".", p.path + "[]")) for p in warned)]


def collect_warnings(settings: Settings) -> list[str]:
    """One line per srt key that is present with an effect and that netjail ignores."""
    warnings: list[str] = []
    for verdict in _warning_roots():
        for where, value in _values_at(settings, verdict.path):
            if _is_set(value):
                warnings.append(f"{where}: {verdict.why}")
    return warnings
