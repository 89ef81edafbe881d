"""`netjail audit --html`: the audit report as one self-contained HTML page.

No script, no external resource (a Content-Security-Policy forbids any), inline CSS and SVG only, so it opens
in any browser with no network. Every value from a record is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from netjail.inspect.audit import KIND_MEANING, flagged_summary, flagged_target, what_left
from netjail.utils.text import human_bytes

MAX_HOSTS = 60
CHART_WIDTH = 560
ROW = 22
LABEL = 260

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1d2330;background:#fff;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.meta{color:#566074} code{background:#f2f4f8;padding:1px 4px;border-radius:3px;word-break:break-all}
.summary{font-size:16px;background:#f6f8fb;border:1px solid #dde2ea;border-radius:6px;padding:10px 14px}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceff4;vertical-align:top}
th{background:#f6f8fb} td.n{text-align:right;font-variant-numeric:tabular-nums}
.deny{color:#b3261e;font-weight:600} .ok{color:#1b7f3b} .flag{color:#8a5a00;font-weight:600}
.pattern{border-left:4px solid #b3261e;background:#fdf3f2;padding:6px 10px;margin:6px 0}
svg text{font:12px system-ui,sans-serif;fill:#1d2330} .bar rect{fill:#3867d6} .bar.zero rect{fill:#c9ced8}
.tl-allow{fill:#2e9e5b} .tl-deny{fill:#d64541} .axis{stroke:#c9ced8}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
"""


def _e(value: Any) -> str:
    return escape(str(value if value is not None else ""), quote=True)


def _bars(hosts: list[dict[str, Any]]) -> str:
    shown = hosts[:MAX_HOSTS]
    rest = hosts[MAX_HOSTS:]
    rows = [(h["host"], h["bytes_out"], 1) for h in shown]
    if rest:
        rows.append((f"other ({len(rest)} hosts)", sum(h["bytes_out"] for h in rest), len(rest)))
    top = max((b for _, b, _ in rows), default=0) or 1
    height = ROW * len(rows) + 10
    parts = [
        f'<svg id="bytes-out-chart" role="img" aria-label="bytes sent per host" width="{LABEL + CHART_WIDTH + 110}" '
        f'height="{height}" viewBox="0 0 {LABEL + CHART_WIDTH + 110} {height}">'
    ]
    for i, (host, sent, count) in enumerate(rows):
        y = i * ROW + 4
        width = round(sent / top * CHART_WIDTH, 1)
        cls = "bar" if sent else "bar zero"
        parts.append(
            f'<g class="{cls}" data-host="{_e(host)}" data-bytes-out="{sent}" data-hosts="{count}">'
            f"<title>{_e(host)}: {sent} bytes sent</title>"
            f'<text x="{LABEL - 8}" y="{y + 14}" text-anchor="end">{_e(host if len(host) <= 38 else host[:35] + "...")}</text>'
            f'<rect x="{LABEL}" y="{y}" width="{max(width, 1 if sent else 0.5)}" height="{ROW - 6}" rx="2"></rect>'
            f'<text x="{LABEL + width + 6}" y="{y + 14}">{_e(human_bytes(sent))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _timeline(report: dict[str, Any]) -> str:
    timeline = report["_timeline"]
    bins, span = timeline["bins"], timeline["span_seconds"]
    names = [h["host"] for h in report["hosts"][:MAX_HOSTS]]
    cell = CHART_WIDTH / bins
    height = ROW * len(names) + 28
    width = LABEL + CHART_WIDTH + 20
    parts = [
        f'<svg id="timeline" role="img" aria-label="requests over time per host" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    peak = 1
    for name in names:
        allowed, denied = timeline["hosts"].get(name, ({}, {}))
        peak = max([peak, *allowed.values(), *denied.values()])
    for i, name in enumerate(names):
        y = i * ROW + 4
        allowed, denied = timeline["hosts"].get(name, ({}, {}))
        parts.append(f'<g class="tl-row" data-host="{_e(name)}">')
        parts.append(
            f'<text x="{LABEL - 8}" y="{y + 14}" text-anchor="end">{_e(name if len(name) <= 38 else name[:35] + "...")}</text>'
        )
        parts.append(
            f'<line class="axis" x1="{LABEL}" x2="{LABEL + CHART_WIDTH}" y1="{y + 9}" y2="{y + 9}"></line>'
        )
        for cls, counts in (("tl-allow", allowed), ("tl-deny", denied)):
            for index, n in sorted(counts.items()):
                x = LABEL + int(index) * cell
                opacity = 0.35 + 0.65 * (n / peak)
                at = span * int(index) / bins
                parts.append(
                    f'<rect class="{cls}" x="{x:.1f}" y="{y + (1 if cls == "tl-allow" else 9)}" width="{max(cell, 2):.1f}" '
                    f'height="8" opacity="{opacity:.2f}"><title>{_e(name)}: {n} '
                    f"{'allowed' if cls == 'tl-allow' else 'denied'} at +{at:.1f}s</title></rect>"
                )
        parts.append("</g>")
    axis_y = ROW * len(names) + 18
    parts.append(f'<text x="{LABEL}" y="{axis_y}">0 s</text>')
    parts.append(f'<text x="{LABEL + CHART_WIDTH}" y="{axis_y}" text-anchor="end">{span:.1f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    run = report["run"]
    out: list[str] = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>netjail audit · {_e(run['run_id'])}</title><style>{CSS}</style></head><body>",
        f'<h1>netjail audit</h1><div class="meta">run <code>{_e(run["run_id"])}</code> · started {_e(run.get("start"))}'
        f" · exit status {_e(run.get('exit_status'))}"
        + (
            f" · network mode {_e(run['network_mode'])}"
            if run.get("network_mode") not in (None, "enforce")
            else ""
        )
        + "</div>",
    ]
    if run.get("command") is not None:
        out.append(f'<p class="meta">command: <code>{_e(run["command"])}</code></p>')
    out.append(
        f'<p class="summary" id="summary"><b>What left:</b> {_e(what_left(report).removeprefix("What left: "))} '
        f'<span class="flag">{_e(flagged_summary(report))}</span></p>'
    )
    out.append("<h2>Bytes sent per host</h2>")
    out.append(_bars(report["hosts"]))
    out.append("<h2>Timeline</h2>")
    out.append(
        '<div class="legend meta">requests per host over the run<span style="background:#2e9e5b"></span>allowed'
        '<span style="background:#d64541"></span>denied</div>'
    )
    out.append(_timeline(report))
    out.append("<h2>Flagged: patterns across the run, and flows</h2>")
    if not report["findings"] and not report["flagged"]:
        out.append(
            '<p class="ok" id="no-flags">Nothing flagged: no large upload, encoded data, DNS-tunnel pattern or secret.</p>'
        )
    for finding in report["findings"]:
        out.append(
            f'<div class="pattern"><b>pattern across the run, {_e(finding["kind"])}</b>: {_e(finding["detail"])}<br>'
            f'<span class="meta">e.g. {_e(", ".join(finding["examples"]))}</span></div>'
        )
    if report["flagged"]:
        out.append(
            '<table id="flagged"><tr><th>time (UTC)</th><th>request</th><th>verdict</th><th class="n">bytes out</th><th>why flagged</th></tr>'
        )
        for f in report["flagged"]:
            where, path = flagged_target(f)
            reasons = "<br>".join(
                f'<span class="flag">{_e(fl.get("kind"))}</span>: {_e(fl.get("detail"))}' for fl in f["flags"]
            )
            out.append(
                f"<tr><td>{_e(str(f.get('ts') or '')[11:23])}</td><td><code>{_e(f.get('method'))} {_e(where)}{_e(path)}</code></td>"
                f'<td class="{"deny" if f.get("verdict") == "deny" else "ok"}">{_e(f.get("verdict"))}</td>'
                f'<td class="n">{_e(f.get("bytes_out"))}</td><td>{reasons}</td></tr>'
            )
        out.append("</table>")
        if report["flagged_omitted"]:
            out.append(
                f'<p class="meta">… and {report["flagged_omitted"]} more (netjail flows --flagged).</p>'
            )
    out.append("<h2>Per destination host</h2>")
    out.append(
        '<table id="hosts"><tr><th>host</th><th class="n">requests</th><th class="n">bytes out</th>'
        '<th class="n">bytes in</th><th class="n">denied</th><th class="n">flagged</th></tr>'
    )
    for h in report["hosts"]:
        out.append(
            f'<tr><td>{_e(h["host"])}</td><td class="n">{h["requests"]}</td><td class="n">{h["bytes_out"]}</td>'
            f'<td class="n">{h["bytes_in"]}</td><td class="n{" deny" if h["denied"] else ""}">{h["denied"]}</td>'
            f'<td class="n{" flag" if h["flagged"] else ""}">{h["flagged"]}</td></tr>'
        )
    out.append("</table>")
    if report["flag_kinds"]:
        out.append("<h2>What the flags mean</h2><ul>")
        for kind in sorted(report["flag_kinds"]):
            out.append(f"<li><b>{_e(kind)}</b>: {_e(KIND_MEANING.get(kind, ''))}</li>")
        out.append("</ul>")
    if report["secrets_checked"]:
        out.append(
            '<p class="meta">Secrets looked for (values never shown): '
            + _e(", ".join(report["secrets_checked"]))
            + "</p>"
        )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    out.append(
        f'<p class="meta">Generated by netjail audit --html at {generated} from {_e(run["path"])}.</p>'
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
