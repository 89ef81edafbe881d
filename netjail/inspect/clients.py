"""Which client made a request, and what it was fetching: pip, npm, git and others, recognised from the
record alone (user agent, URL shape). Used by `netjail why` to say what a blocked request was for."""

from __future__ import annotations

import re
import urllib.parse

from netjail.records.schema import FlowRecord

_UA_TOOLS = (
    ("pip", re.compile(r"^pip/")),
    ("uv", re.compile(r"^uv/")),
    ("poetry", re.compile(r"^poetry/")),
    ("npm", re.compile(r"^npm/|\bnpm/\d")),
    ("yarn", re.compile(r"^yarn/")),
    ("pnpm", re.compile(r"^pnpm/")),
    ("git", re.compile(r"^git/")),
    ("cargo", re.compile(r"^cargo")),
    ("go", re.compile(r"^Go-http-client/")),
    ("curl", re.compile(r"^curl/")),
    ("wget", re.compile(r"^Wget/")),
    ("python", re.compile(r"^(python-requests|Python-urllib|python-httpx|aiohttp)/")),
    ("node", re.compile(r"^(node|undici|axios)")),
)
_PY_FILE = re.compile(r"([A-Za-z0-9_.\-]+\.(?:whl|tar\.gz|zip|tar\.bz2|egg))(?:\.metadata)?$")


def tool_of(record: FlowRecord) -> str | None:
    ua = str(record.get("user_agent") or "")
    for name, pattern in _UA_TOOLS:
        if pattern.search(ua):
            return name
    path = str(record.get("path") or "")
    if "/info/refs?service=git-" in path or path.endswith(("/git-upload-pack", "/git-receive-pack")):
        return "git"
    if "/simple/" in path or _PY_FILE.search(path.split("?")[0].split("#")[0]):
        return "pip"
    if re.search(r"/-/[^/]+\.tgz$", path):
        return "npm"
    return None


def what_of(tool: str | None, record: FlowRecord) -> str | None:
    """What a package manager was fetching, from the request's path (None for a refused tunnel)."""
    path = str(record.get("path") or "")
    if record.get("method") == "CONNECT" or not path:
        return None
    bare = urllib.parse.unquote(path.split("?")[0].split("#")[0])
    if tool in ("pip", "uv", "poetry"):
        if "/simple/" in bare:
            project = bare.split("/simple/", 1)[1].strip("/").split("/")[0]
            return f"the index page of package {project!r}" if project else "the package index"
        if match := _PY_FILE.search(bare):
            return f"the package file {match.group(1)}"
        if bare.rstrip("/").endswith("/json"):
            return f"package metadata {bare}"
    if tool in ("npm", "yarn", "pnpm"):
        if match := re.search(r"/-/([^/]+\.tgz)$", bare):
            return f"the package tarball {match.group(1)}"
        name = bare.lstrip("/")
        if name and not name.startswith("-/"):
            return f"the metadata of package {name!r}"
    if tool == "git":
        for marker, action in (
            ("/info/refs", "the refs of"),
            ("/git-upload-pack", "the objects of"),
            ("/git-receive-pack", "a push to"),
        ):
            if marker in bare:
                return f"{action} repository {record.get('host')}{bare.split(marker)[0]}"
    return None
