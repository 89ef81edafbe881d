"""Transparent capture inside the jail's network namespace, and the synthetic addresses its resolver hands out.

The namespace has only loopback. A default route over loopback makes every destination reachable *inside* the
namespace, and a netfilter `nat output` chain redirects every TCP connection (IPv4 and IPv6, any address, any
port) to the proxy's transparent listener and every DNS query to the jail's resolver. A `filter output`
chain drops everything else (other UDP, QUIC, ICMP), counting each drop per destination in dynamic sets that
netjail reads when the run ends (netjail/jail/linux/dropped.py). The rules are installed before bubblewrap starts, by
the process that owns the namespace; the command runs in a nested user namespace without CAP_NET_ADMIN over
it, so it can neither flush the rules nor change links or routes.

The resolver answers an allowed name with a synthetic address from a block no real host uses — 240.0.0.0/4
(reserved, "future use") and 100::/64 (RFC 6666 discard-only) — and the proxy maps the address back to the
name when the connection arrives, so the policy judges the name, never an IP that only looks like one.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

from netjail.jail.spec import PROXY_PORT

TRANSPARENT_PORT = PROXY_PORT + 1
DNS_PORT = 53
LOOPBACK_V4_SOURCE = "240.0.0.1"  # the address replies return to; never leaves the namespace
LOOPBACK_V6_SOURCE = "100::1"

IP_COMMANDS = f"""\
address add {LOOPBACK_V4_SOURCE}/32 dev lo
route add default dev lo src {LOOPBACK_V4_SOURCE}
"""
IP6_COMMANDS = f"""\
address add {LOOPBACK_V6_SOURCE}/128 dev lo nodad
route add ::/0 dev lo src {LOOPBACK_V6_SOURCE}
"""
UNDO_IP_COMMANDS = "route del default\nroute del ::/0\n"

DROP_SET_SIZE = 4096  # destinations counted per set; drops beyond are counted together in `unlisted`
DROP_SETS = {  # set -> (protocol field, key)
    "udp4": "ipv4_addr . inet_service",
    "udp6": "ipv6_addr . inet_service",
    "other4": "ipv4_addr . inet_proto",
    "other6": "ipv6_addr . inet_proto",
}
_DROP_SET_LINES = "".join(
    f"  set {name} {{ type {key}; size {DROP_SET_SIZE}; flags dynamic; counter; }}\n"
    for name, key in DROP_SETS.items()
)

NFT_RULES = f"""\
table inet netjail {{
{_DROP_SET_LINES}  counter unlisted {{ }}
  chain capture {{
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.0/8 return
    ip6 daddr ::1 return
    udp dport 53 redirect to :{DNS_PORT}
    meta l4proto tcp redirect to :{TRANSPARENT_PORT}
  }}
  chain egress {{
    type filter hook output priority 0; policy drop;
    ct state established,related accept
    ip daddr 127.0.0.0/8 accept
    ip6 daddr ::1 accept
    fib daddr type local accept
    meta nfproto ipv4 meta l4proto udp add @udp4 {{ ip daddr . udp dport }} drop
    meta nfproto ipv6 meta l4proto udp add @udp6 {{ ip6 daddr . udp dport }} drop
    meta nfproto ipv4 add @other4 {{ ip daddr . meta l4proto }} drop
    meta nfproto ipv6 add @other6 {{ ip6 daddr . meta l4proto }} drop
    counter name unlisted
  }}
}}
"""


class CaptureError(Exception):
    pass


# -- installing the rules (runs in the forked namespace helper) ------------------------------------------------

CAP_NET_ADMIN = 12
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _ambient_net_admin(libc: ctypes.CDLL, raise_it: bool) -> None:
    """`ip` and `nft` are separate programs: an unprivileged user's capabilities in the new namespace do not
    survive exec unless CAP_NET_ADMIN is made ambient for them (and cleared again before bwrap)."""
    if not raise_it:
        libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        return
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise CaptureError(f"capget failed: {os.strerror(ctypes.get_errno())}")
    data[0].inheritable |= 1 << CAP_NET_ADMIN
    if libc.capset(ctypes.byref(header), data) != 0:
        raise CaptureError(f"capset failed: {os.strerror(ctypes.get_errno())}")
    if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) != 0:
        raise CaptureError(f"cannot raise CAP_NET_ADMIN: {os.strerror(ctypes.get_errno())}")


def install_capture(ipv6: bool) -> None:
    """Routes and netfilter rules for transparent capture. Raises CaptureError when the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    _ambient_net_admin(libc, True)
    try:
        # Rules first: a default route without them would send connections nowhere (hangs, not errors).
        nft, ip = tool("nft"), tool("ip")
        _run("nft", [nft, "-f", "-"], NFT_RULES)
        _allow_echo_sockets()
        try:
            _run("ip", [ip, "-batch", "-"], IP_COMMANDS + (IP6_COMMANDS if ipv6 else ""))
        except CaptureError:
            subprocess.run(
                [ip, "-force", "-batch", "-"], input=UNDO_IP_COMMANDS, capture_output=True, text=True
            )
            raise
    finally:
        _ambient_net_admin(libc, False)


def _allow_echo_sockets() -> None:
    """ICMP echo sockets for the user's group, in this namespace only: `ping` then makes its attempt, which
    the egress chain drops and counts, instead of failing before anything is sent (the host's
    net.ipv4.ping_group_range, often off, is left alone). Without it, ICMP is simply unreachable."""
    gid = os.getgid()
    try:
        with open("/proc/sys/net/ipv4/ping_group_range", "w") as f:
            f.write(f"{gid} {gid}")
    except OSError:
        pass


def tool(name: str) -> str:
    """`ip` and `nft` live in sbin, which an unprivileged user's PATH often lacks; NETJAIL_IP / NETJAIL_NFT
    name them where they live elsewhere."""
    if override := os.environ.get(f"NETJAIL_{name.upper()}"):
        return override
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    found = shutil.which(name, path=search)
    if found is None:
        raise CaptureError(f"{name} is not installed (Debian/Ubuntu: apt-get install iproute2 nftables)")
    return found


def _run(name: str, argv: list[str], stdin: str) -> None:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=10)
    except OSError as e:
        raise CaptureError(f"{name} ({argv[0]}) cannot run: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise CaptureError(f"{name} ({argv[0]}) did not finish") from e
    if done.returncode != 0:
        detail = (
            done.stderr.strip().splitlines()[0] if done.stderr.strip() else f"exit status {done.returncode}"
        )
        raise CaptureError(f"{name} ({argv[0]}) failed: {detail}")
