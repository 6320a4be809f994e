"""Self-contained HTML rendering of a security review (one file, no network fetches).

Everything is inline: CSS, a small script for searching and sorting tables, and the escalation
paths as SVG laid out here. A Content-Security-Policy meta tag forbids every fetch, so a stray
external reference fails closed instead of leaking that someone opened the report.
"""

from __future__ import annotations

import html
from collections import deque

from iamgraph.report.review import Diff, PathGraph, Review, Table

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_CSS = """
:root { --fg:#1d232b; --muted:#5b6470; --line:#d6dbe1; --bg:#fff; --accent:#2f5f9e; --bad:#b3261e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0;
       background: var(--bg); }
header { padding: 18px 28px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
nav { padding: 8px 28px; border-bottom: 1px solid var(--line); position: sticky; top: 0; background: var(--bg); }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
main { padding: 0 28px 40px; }
section { margin-top: 26px; }
h2 { font-size: 18px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.card b { display: block; font-size: 22px; }
table { border-collapse: collapse; width: 100%; margin-top: 6px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top;
         word-break: break-word; }
td { white-space: pre-line; }
th { cursor: pointer; background: #f3f5f8; user-select: none; white-space: nowrap; }
th[data-dir="asc"]::after { content: " \\25B2"; } th[data-dir="desc"]::after { content: " \\25BC"; }
input.filter { width: 320px; padding: 4px 8px; border: 1px solid var(--line); border-radius: 4px; }
.note { color: var(--muted); }
.count { color: var(--muted); margin-left: 8px; }
svg.path-graph { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0 14px; background: #fbfcfd; }
svg .node rect { fill: #e8eef7; stroke: var(--accent); }
svg .node.admin rect, svg .node.AdminEquivalent rect { fill: #fbe9e7; stroke: var(--bad); }
svg .edge line { stroke: #6d7785; stroke-width: 1.4; }
svg .edge.change line { stroke: var(--bad); stroke-dasharray: 5 3; }
svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
svg .edge text { fill: var(--muted); }
pre.diff { background: #f6f8fa; border: 1px solid var(--line); padding: 8px; overflow-x: auto; }
pre.diff .add { color: #1a7f37; } pre.diff .del { color: var(--bad); }
#js-errors:empty { display: none; }
#js-errors { color: var(--bad); white-space: pre; }
"""

# Runs first: records script errors (and console.error) in the page itself, so a headless
# browser's DOM dump shows them.
_TRAP = """
window.__igErrors = [];
function __igRecord(msg) {
  window.__igErrors.push(String(msg));
  var el = document.getElementById('js-errors');
  if (el) { el.textContent = window.__igErrors.join('\\n'); el.setAttribute('data-count', window.__igErrors.length); }
}
window.addEventListener('error', function (e) { __igRecord(e.message || 'error'); });
window.addEventListener('unhandledrejection', function (e) { __igRecord('unhandled rejection: ' + e.reason); });
(function () { var orig = console.error; console.error = function () {
  __igRecord(Array.prototype.join.call(arguments, ' ')); return orig.apply(console, arguments); }; })();
"""

_SCRIPT = """
(function () {
  function cellText(row, i) { var c = row.cells[i]; return c ? c.textContent.trim() : ''; }
  function compare(a, b) {
    var na = parseFloat(a), nb = parseFloat(b);
    if (!isNaN(na) && !isNaN(nb) && String(na) === a && String(nb) === b) { return na - nb; }
    return a.localeCompare(b);
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, i) {
      th.addEventListener('click', function () {
        var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = compare(cellText(r1, i), cellText(r2, i)); return dir === 'asc' ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll('input.filter').forEach(function (input) {
    var table = document.getElementById(input.getAttribute('data-table'));
    var counter = document.getElementById(input.getAttribute('data-table') + '-count');
    input.addEventListener('input', function () {
      var q = input.value.toLowerCase(), shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var hit = r.textContent.toLowerCase().indexOf(q) !== -1;
        r.style.display = hit ? '' : 'none'; if (hit) { shown++; }
      });
      if (counter) { counter.textContent = shown + ' shown'; }
    });
  });
  document.body.setAttribute('data-ready', '1');
})();
"""

_NODE_W, _NODE_H, _COL, _ROW, _PAD = 170, 34, 320, 58, 16


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fit(label: str, width: int = 22) -> str:
    """Edge labels sit in the gap between columns; the full text is in the edge's <title>."""
    return label if len(label) <= width else label[: width - 1] + "…"


def layout(graph: PathGraph) -> dict[str, tuple[float, float]]:
    """Columns by hop distance from the first node (sources first), rows within a column."""
    order = [n.id for n in graph.nodes]
    out_edges: dict[str, list[str]] = {n: [] for n in order}
    indeg: dict[str, int] = {n: 0 for n in order}
    for e in graph.edges:
        out_edges[e.source].append(e.target)
        indeg[e.target] += 1
    depth: dict[str, int] = {}
    roots = [n for n in order if indeg[n] == 0] or order[:1]
    queue = deque((r, 0) for r in roots)
    while queue:
        node, d = queue.popleft()
        if node in depth:
            continue
        depth[node] = d
        for t in out_edges[node]:
            if t not in depth:
                queue.append((t, d + 1))
    for n in order:
        depth.setdefault(n, 0)
    rows: dict[int, int] = {}
    pos: dict[str, tuple[float, float]] = {}
    for n in order:
        col = depth[n]
        row = rows.get(col, 0)
        rows[col] = row + 1
        pos[n] = (_PAD + col * _COL, _PAD + row * _ROW)
    return pos


def render_svg(graph: PathGraph, index: int) -> str:
    pos = layout(graph)
    width = max(x for x, _ in pos.values()) + _NODE_W + _PAD
    height = max(y for _, y in pos.values()) + _NODE_H + _PAD
    marker = f"arrow{index}"
    parts = [
        f'<svg class="path-graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{_e(graph.title)}">',
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#6d7785"/></marker></defs>',
    ]
    for e in graph.edges:
        (x1, y1), (x2, y2) = pos[e.source], pos[e.target]
        sx, sy = x1 + _NODE_W, y1 + _NODE_H / 2
        tx, ty = x2, y2 + _NODE_H / 2
        if x2 <= x1:  # same or earlier column: leave from the bottom, enter at the top
            sx, sy, tx, ty = x1 + _NODE_W / 2, y1 + _NODE_H, x2 + _NODE_W / 2, y2
        cls = "edge change" if e.change else "edge"
        parts.append(
            f'<g class="{cls}"><title>{_e(e.label)}: {_e(e.source)} → {_e(e.target)}</title>'
            f'<line x1="{sx:.0f}" y1="{sy:.0f}" x2="{tx:.0f}" y2="{ty:.0f}" marker-end="url(#{marker})"/>'
            f'<text x="{(sx + tx) / 2:.0f}" y="{(sy + ty) / 2 - 4:.0f}" text-anchor="middle">{_e(_fit(e.label))}</text></g>'
        )
    for n in graph.nodes:
        x, y = pos[n.id]
        label = n.label if len(n.label) <= 28 else n.label[:26] + "…"
        parts.append(
            f'<g class="node {_e(n.kind)}" data-id="{_e(n.id)}"><title>{_e(n.id)}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{_NODE_W}" height="{_NODE_H}" rx="6"/>'
            f'<text x="{x + _NODE_W / 2:.0f}" y="{y + _NODE_H / 2 + 4:.0f}" text-anchor="middle">{_e(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_table(table: Table) -> str:
    if not table.rows:
        empty = f"none found ({table.note})" if table.note else "none found"
        return f'<p class="note" id="{_e(table.id)}-empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in table.rows)
    note = f'<p class="note">{_e(table.note)}</p>' if table.note else ""
    return (
        f'{note}<input class="filter" type="search" placeholder="Search…" data-table="{_e(table.id)}" '
        f'aria-label="Search {_e(table.id)}"><span class="count" id="{_e(table.id)}-count">'
        f"{len(table.rows)} rows</span>"
        f'<table class="sortable" id="{_e(table.id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _diff(d: Diff) -> str:
    lines = []
    for line in d.text.splitlines():
        cls = (
            "add"
            if line.startswith("+") and not line.startswith("+++")
            else ("del" if line.startswith("-") and not line.startswith("---") else "")
        )
        lines.append(f'<span class="{cls}">{_e(line)}</span>' if cls else _e(line))
    return f'<h3>{_e(d.title)}</h3><pre class="diff">{chr(10).join(lines)}</pre>'


def render_html(review: Review) -> str:
    sections: list[tuple[str, str, str]] = []
    cards = "".join(f'<div class="card"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in review.summary)
    notes = "".join(f"<li>{_e(n)}</li>" for n in review.notes)
    sections.append(
        ("summary", "Summary", f'<div class="cards">{cards}</div>' + (f"<ul>{notes}</ul>" if notes else ""))
    )
    if review.drift is not None:
        sections.append(("drift-section", "Changes since the baseline", render_table(review.drift)))
    sections.append(("admins-section", "Admin-equivalent principals", render_table(review.admins)))
    graphs = (
        "".join(
            f"<h3>{_e(g.title)}{'' if g.definite else ' (if conditions hold)'}</h3>{render_svg(g, i)}"
            for i, g in enumerate(review.paths)
        )
        or '<p class="note">no escalation paths</p>'
    )
    sections.append(("privesc-section", "Privilege-escalation paths", graphs + render_table(review.privesc)))
    sections.append(("exposure-section", "Exposure", render_table(review.exposure)))
    sections.append(("sensitive-section", "Sensitive-data access", render_table(review.sensitive)))
    sections.append(("sod-section", "Separation-of-duties conflicts", render_table(review.sod)))
    recs = "".join(_diff(d) for d in review.recommendations)
    sections.append(
        ("unused-section", "Unused permissions and recommendations", render_table(review.unused) + recs)
    )
    sections.append(
        ("credentials-section", "Root user and credential hygiene", render_table(review.credentials))
    )
    nav = "".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{_e(title)}</h2>{content}</section>' for sid, title, content in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(review.title)}</title><style>{_CSS}</style><script>{_TRAP}</script></head>"
        f"<body><header><h1>{_e(review.title)}</h1><p>snapshot {_e(review.generated_from)}, collected "
        f"{_e(review.collected_at)}</p></header><nav>{nav}</nav>"
        f'<div id="js-errors"></div><main>{body}</main><script>{_SCRIPT}</script></body></html>\n'
    )
