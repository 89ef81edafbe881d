"""The records of a run's flows.jsonl, typed: `run_start`, `flow_start`, `flow`, `dns`, `dropped`, `quarantine`,
`run_end`.

docs/records.md describes them for a person; tests/unit/records/test_schema.py checks that the doc and these
types name the same fields and codes. TypedDicts rather than classes: a record is the parsed JSON object
itself, so reading a run of any size costs no conversion. Only `typing` is imported (the supervisor imports
this on every run).

Reading: a record comes from a file, which may have been written by an older netjail or by stock mitmdump
with the recorder addon, so readers keep using `.get` for fields; the types say what netjail writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs from Python 3.13 on

# The key of `flow.metadata` under which the policy addon leaves its verdict for the recorder (flows.mitm keeps it).
METADATA_KEY = "netjail"
# A request body an addon must see whole at `request` (the credential injector scans or swaps it there): the
# upload caps then count it there instead of streaming it.
BUFFERED_KEY = "netjail.buffered"

Event = Literal[
    "run_start",
    "flow_start",
    "flow",
    "dns",
    "dropped",
    "quarantine",
    "policy_update",
    "refused_write",
    "run_end",
]
AllowOrDeny = Literal["allow", "deny"]

# What the policy decides (netjail/policy/decision.py `Reason`, checked equal by the tests).
PolicyReason = Literal[
    "allowed",
    "not_allowed",
    "port_not_allowed",
    "denied_by_rule",
    "denied_by_request_rule",
    "ambiguous_path",
    "opaque_tunnel",
    "tunnel_limit",
    "ip_literal",
    "private_destination",
    "host_mismatch",
    "sni_mismatch",
    "invalid_host",
    "policy_error",
    "would_deny",
    "asked",
]
# A flow's reason: the policy's, the proxy-secret check (addons/proxyauth.py), the parser limits
# (`limit_exceeded`), the credential addon's pinning (`credential_pinned`, addons/credentials.py), a canary
# credential seen leaving (`canary_tripped`, addons/canaries.py), and what the recorder says went wrong after an allow (addons/recorder.py; `incomplete`:
# still open when the proxy stopped).
FlowReason = Literal[
    PolicyReason,
    "proxy_auth",
    "limit_exceeded",
    "credential_pinned",
    "credential_misdirected",
    "canary_tripped",
    "log_failed",
    "upstream_error",
    "client_tls_failed",
    "client_aborted",
    "incomplete",
]
ErrorKind = Literal["dns", "tls_verify", "refused", "timeout", "client_aborted", "incomplete", "other"]
FlagKind = Literal[
    "secret",
    "credential",
    "large_upload",
    "high_entropy_body",
    "encoded_body",
    "encoded_url",
    "encoded_header",
    "long_dns_label",
    "canary",
]
EndReason = Literal[
    "exited",
    "signaled",
    "interrupted",
    "proxy_failed",
    "proxy_killed",
    "log_failed",
    "setup_failed",
    "canary_tripped",
]
QuarantineAction = Literal["moved", "sanitised", "deleted", "mode_cleared", "restored", "failed"]
FileType = Literal["file", "directory", "symlink", "fifo", "socket", "char-device", "block-device", "other"]
SettingsOrigin = Literal["flag", "env", "user", "bundled"]
CaptureMode = Literal["proxy-variables", "transparent"]
NetworkMode = Literal["enforce", "audit"]


class RunStart(TypedDict):
    event: Literal["run_start"]
    ts: str
    run_id: str
    command: str
    argv: list[str]
    cwd: str
    settings_file: str
    settings_origin: SettingsOrigin
    netjail_version: str
    platform: str  # the jail backend: linux-bwrap, macos-seatbelt
    capture_mode: CaptureMode | None  # None when the jail never started
    network_mode: NetworkMode
    pid: int


class Flag(TypedDict):
    kind: FlagKind
    detail: str


class WebSocketCounts(TypedDict):
    messages_out: int
    messages_in: int
    bytes_out: int
    bytes_in: int


class Truncated(TypedDict):
    """What a cap cut (docs/records.md, Caps): the full value's length and digest."""

    length: int
    sha256: str


class FlowRecord(TypedDict):
    """A record over the line cap keeps only its core fields and `truncated.record` (docs/records.md, Caps)."""

    event: Literal["flow"]
    id: str
    ts: str
    duration_ms: float | None
    method: str | None  # None for raw TCP
    scheme: str  # http, https, tcp
    host: str
    port: int
    authority: str | None
    sni: str | None
    path: str | None
    url: str
    http_version: str | None
    status: int | None
    bytes_out: int
    bytes_in: int
    verdict: AllowOrDeny
    rule: str
    reason: FlowReason
    error: str | None
    error_kind: ErrorKind | None
    detail: str | None
    address: str | None
    tunnel: bool
    user_agent: NotRequired[str | None]  # not for raw TCP
    sha256_out: NotRequired[str | None]  # when the body was streamed through the recorder
    sha256_in: NotRequired[str | None]
    redacted: NotRequired[list[str]]
    truncated: NotRequired[dict[str, Truncated]]  # field name (or "record") -> what was cut
    websocket: NotRequired[WebSocketCounts]
    # Always written by netjail's recorder; missing from records written without its detectors (`netjail audit`
    # then computes what the record alone shows).
    flags: NotRequired[list[Flag]]
    redacted_secrets: NotRequired[list[str]]
    target: NotRequired[str]  # an absolute-form target inside a tunnel, as sent
    incomplete: NotRequired[bool]  # still under way when the proxy stopped
    credentials: NotRequired[CredentialNotes]  # masked credentials this request carried (names, never values)
    canaries: NotRequired[list[CanarySighting]]  # audit.canaries: the canaries this request carried (names)


class CanarySighting(TypedDict):
    """A canary credential (settings audit.canaries) seen leaving: its name, never its value."""

    canary: str  # the variable (LEGACY_GH_TOKEN), or the decoy file and its key
    where: list[str]  # "header <name>", "query", "path", "host", "sni", "connect", "body", "dns"
    encoding: str  # how it was written: plain, url-encoded, hex, base64, base32, json-escaped, json


class CredentialInjection(TypedDict):
    credential: str  # the settings entry, e.g. "credentials.envVars[0] (API_TOKEN)"
    where: list[str]  # "header <name>", "header authorization (basic)", "query", "path", "body"
    count: int


class CredentialSighting(TypedDict):
    credential: str
    where: list[str]


class CredentialNotes(TypedDict):
    injected: NotRequired[list[CredentialInjection]]  # placeholder replaced by the real value
    # left as it is: toward a host it is not for, over plain HTTP, in a body that carries its own digest
    placeholder_left: NotRequired[list[CredentialSighting]]
    sigv4: NotRequired[Literal["re-signed"]]


class FlowStart(TypedDict):
    """Written before the first byte of an allowed flow goes upstream; its `flow` (same `id`) completes it."""

    event: Literal["flow_start"]
    id: str
    ts: str
    method: str | None
    scheme: str
    host: str
    port: int
    url: str
    verdict: AllowOrDeny
    rule: str
    reason: FlowReason
    target: NotRequired[str]
    truncated: NotRequired[dict[str, Truncated]]
    redacted_secrets: NotRequired[list[str]]


class DroppedRecord(TypedDict):
    """Packets the jail's network dropped (not TCP or DNS), counted per destination when the run ends; `protocol`,
    `host` and `port` null for the destinations past the counted ones; `error` alone when counting failed."""

    event: Literal["dropped"]
    ts: str
    protocol: NotRequired[str | None]
    host: NotRequired[str | None]
    port: NotRequired[int | None]
    packets: NotRequired[int]
    bytes_out: NotRequired[int]
    verdict: NotRequired[Literal["deny"]]
    rule: NotRequired[Literal["capture"]]
    reason: NotRequired[Literal["dropped"]]
    error: NotRequired[str]


class DnsRecord(TypedDict):
    event: Literal["dns"]
    id: str
    ts: str
    name: str
    type: str | int  # the query type's name (A, AAAA, …); 0 for a malformed query
    verdict: AllowOrDeny
    rule: str
    reason: PolicyReason | Literal["canary_tripped"]
    answer: list[str] | str  # the synthetic addresses given, or NXDOMAIN, FORMERR, "REFUSED (…)"
    redacted_secrets: NotRequired[list[str]]
    canaries: NotRequired[
        list[CanarySighting]
    ]  # the name carried a canary: refused, `name` shows where it was


class Quarantined(TypedDict):
    """What the end of the run took out of the tree (netjail/jail/), before it is a record."""

    path: str
    moved_to: str | None  # None when it could not be kept
    action: NotRequired[QuarantineAction]  # moved when absent
    file_type: NotRequired[FileType]
    during_run: NotRequired[bool]
    dropped: NotRequired[list[str]]  # for sanitised
    sha256: NotRequired[dict[str, str]]  # for deleted
    error: NotRequired[str]
    restored_link: NotRequired[str]  # the symlink the run replaced, put back (what it holds, os.readlink)


class QuarantineRecord(Quarantined):
    event: Literal["quarantine"]
    ts: str
    swept: NotRequired[bool]  # a later run's sweep did it


class RunCounts(TypedDict):
    flows: int
    allowed: int
    denied: int
    failed: int
    incomplete: NotRequired[int]  # flows started and never completed
    dropped: NotRequired[int]  # packets counted in `dropped` records
    dns: NotRequired[int]  # lookups the jail's resolver answered (`dns` records)
    dns_denied: NotRequired[int]  # of those, refused by the policy


class RunEnd(TypedDict):
    event: Literal["run_end"]
    ts: str
    run_id: str
    exit_status: int | None  # None when a later run closed the record of a killed netjail
    reason: EndReason
    message: str | None
    signal: int | None
    counts: RunCounts | None
    cleanup_errors: NotRequired[list[str]]  # what the end of the run could not do cleanly


UpdateSource = Literal["sigusr1", "control-fd", "ask"]
UpdateResult = Literal["applied", "refused", "invalid", "failed"]


class PolicyUpdate(TypedDict):
    """A live change of the network policy while the run lasts (netjail/run/updates.py)."""

    event: Literal["policy_update"]
    ts: str
    source: UpdateSource
    result: UpdateResult
    digest: str | None  # SHA-256 of the new effective settings (settings-N.json); None unless applied
    message: str | None
    closed_streams: NotRequired[int]  # open raw TCP and WebSocket streams the new rules refused, closed


# Why the jail refused a write (netjail/jail/refusals.py): outside every allowWrite entry, under a denyWrite entry, a
# name netjail protects, inside a denyRead mask, or netjail's own state.
RefusalCause = Literal["outside_allow_write", "deny_write", "protected", "deny_read", "netjail"]


class RefusedWrite(TypedDict):
    """Writes the jail refused (a read-only mount inside, or a seatbelt denial), seen by the write observer (Linux)
    or the sandbox's violation log (macOS): one
    record per path when the run ends. `path` and `cause` are null in the one record that counts the paths past
    the recorded ones."""

    event: Literal["refused_write"]
    ts: str  # the first attempt
    path: str | None  # as the command named it, resolved to an absolute path inside the jail
    cause: RefusalCause | None
    entry: str | None  # the rule's own path: the denyWrite entry, the protected name, the denyRead entry
    ops: dict[str, int]  # open, create, mkdir, unlink, rename, … -> attempts
    count: int
    programs: list[str]  # the names of the programs that tried (the first few)


AskAnswer = Literal["once", "run", "always", "deny"]
AskDecider = Literal["terminal", "ask-command", "agent-fd", "jailed-agent", "timeout", "no-channel", "ended"]


class AskRecord(TypedDict):
    """Ask mode (network.ask, netjail/run/ask.py): a request to a host no allowedDomains entry covers, put to the
    user, and the answer."""

    event: Literal["ask"]
    ts: str
    id: str
    host: str
    port: int
    request: str  # what was held: "CONNECT host:port", "GET http://host/path", "connect host:port" (captured)
    answer: AskAnswer
    decided_by: AskDecider
    waited_ms: int
    entry: NotRequired[str]  # for always: the allowedDomains entry written to the settings file


Record = (
    RunStart
    | FlowStart
    | FlowRecord
    | DnsRecord
    | DroppedRecord
    | QuarantineRecord
    | PolicyUpdate
    | RefusedWrite
    | AskRecord
    | RunEnd
)


# `record.get("event")`, not `record["event"]`: a line of the file may be any JSON object.


def is_run_start(record: Record) -> TypeIs[RunStart]:
    return record.get("event") == "run_start"


def is_flow(record: Record) -> TypeIs[FlowRecord]:
    return record.get("event") == "flow"


def is_dns(record: Record) -> TypeIs[DnsRecord]:
    return record.get("event") == "dns"


def is_run_end(record: Record) -> TypeIs[RunEnd]:
    return record.get("event") == "run_end"
