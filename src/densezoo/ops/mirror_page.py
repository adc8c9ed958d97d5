"""The mirror's ``index.html``: one self-contained page to see what a mirror holds.

No external assets (it works from ``file://``, behind nginx, or from a bucket): the
table is rendered here, escaped, so it reads without JavaScript; a little inline
script adds a filter box (also driven by ``#q=TEXT`` in the address) and sortable
columns; an inline SVG plots DensePose AP against inference time so a user can pick
a model by looking.  Everything from a manifest is escaped: a description is data.
"""

from __future__ import annotations

import html
from typing import Any

from ..units import human_size

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} input#filter{font-size:1em;padding:.3em;width:24em}
table{border-collapse:collapse;margin-top:1em;width:100%} th,td{padding:.25em .5em;
border-bottom:1px solid #ddd;text-align:left;vertical-align:top} th{cursor:pointer;
background:#f4f4f4;position:sticky;top:0} td.num{text-align:right;white-space:nowrap}
code{font-size:.85em} .hash{font-family:monospace;font-size:.75em;word-break:break-all;
color:#555} tr.hidden{display:none} svg{border:1px solid #ddd;background:#fff}
.dot{fill:#3572b0;opacity:.75} .axis{stroke:#444} .lbl{font-size:10px;fill:#444}
"""

SCRIPT = """
(function(){
  var box=document.getElementById('filter'), rows=[].slice.call(document.querySelectorAll('tbody tr'));
  var count=document.getElementById('count');
  function apply(){var q=box.value.toLowerCase(), n=0;
    rows.forEach(function(r){var hit=r.textContent.toLowerCase().indexOf(q)>=0;
      r.classList.toggle('hidden',!hit); if(hit)n++;});
    count.textContent=n+' of '+rows.length+' artifacts';}
  box.addEventListener('input',apply);
  var m=/[#&]q=([^&]*)/.exec(location.hash); if(m){box.value=decodeURIComponent(m[1]);}
  apply();
  [].forEach.call(document.querySelectorAll('th'),function(th,i){
    th.addEventListener('click',function(){var num=th.dataset.num==='1', dir=th.dataset.dir==='asc'?-1:1;
      th.dataset.dir=dir>0?'asc':'desc'; var body=th.closest('table').tBodies[0];
      rows.sort(function(a,b){var x=a.cells[i].dataset.v||a.cells[i].textContent,
        y=b.cells[i].dataset.v||b.cells[i].textContent;
        if(num){x=parseFloat(x);y=parseFloat(y);if(isNaN(x))x=-1e99;if(isNaN(y))y=-1e99;}
        return x<y?-dir:x>y?dir:0;});
      rows.forEach(function(r){body.appendChild(r);});});});
})();
"""

COLUMNS = (("name", False), ("zoo", False), ("kind", False), ("size", True),
           ("checksum", False), ("AP %", True), ("s/im", True), ("fetch", False))


def _row(r: dict[str, Any]) -> str:
    e = html.escape
    hashes = "".join(f"<div class=hash>{k} {e(str(r[k]))}</div>" for k in ("md5", "sha256")
                     if r.get(k))
    ap = "" if r.get("ap") is None else f"{r['ap']:.1f}"
    speed = "" if r.get("inference") is None else f"{r['inference']:g}"
    size = "" if r.get("size") is None else human_size(r["size"])
    cells = [
        f"<td><b>{e(r['name'])}</b><div>{e(r.get('description') or '')}</div></td>",
        f"<td>{e(r['zoo'])}</td>", f"<td>{e(r['kind'])}</td>",
        f"<td class=num data-v=\"{r.get('size') or ''}\">{size}</td>",
        f"<td>{e(r['strength'])}{hashes}</td>",
        f"<td class=num title=\"{e(r.get('ap_metric') or '')}\">{ap}</td>",
        f"<td class=num>{speed}</td>", f"<td><code>{e(r['command'])}</code></td>"]
    return f"<tr data-name=\"{e(r['name'])}\">" + "".join(cells) + "</tr>"


def _short(name: str) -> str:
    for prefix in ("densepose_rcnn_", "cse.densepose_rcnn_", "evolution.densepose_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name if len(name) <= 24 else name[:23] + "~"


def _chart(rows: list[dict[str, Any]]) -> str:
    """DensePose AP against inference time, one dot per model (with a tooltip)."""
    pts = [r for r in rows if r.get("ap") is not None and r.get("inference") is not None]
    if not pts:
        return ""
    w, h, pad = 520, 300, 40
    xs = [r["inference"] for r in pts]
    ys = [r["ap"] for r in pts]
    x0, x1 = min(xs) * 0.9, max(xs) * 1.05
    y0, y1 = min(ys) - 2, max(ys) + 2

    def sx(v: float) -> float:
        return pad + (v - x0) / ((x1 - x0) or 1) * (w - 2 * pad)

    def sy(v: float) -> float:
        return h - pad - (v - y0) / ((y1 - y0) or 1) * (h - 2 * pad)

    dots = "".join(
        f"<circle class=dot cx=\"{sx(r['inference']):.1f}\" cy=\"{sy(r['ap']):.1f}\" r=\"4\">"
        f"<title>{html.escape(r['name'])}: AP {r['ap']:.1f} ({html.escape(r.get('ap_metric') or '')}),"
        f" {r['inference']:g} s/im</title></circle>"
        f"<text class=lbl x=\"{sx(r['inference']) + 6:.1f}\" y=\"{sy(r['ap']) + 3:.1f}\">"
        f"{html.escape(_short(r['name']))}</text>" for r in pts)
    axes = (f"<line class=axis x1=\"{pad}\" y1=\"{h - pad}\" x2=\"{w - pad}\" y2=\"{h - pad}\"/>"
            f"<line class=axis x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{h - pad}\"/>"
            f"<text class=lbl x=\"{w / 2 - 60}\" y=\"{h - 8}\">inference time (s/image)</text>"
            f"<text class=lbl x=\"4\" y=\"{pad - 10}\">DensePose AP (%)</text>"
            f"<text class=lbl x=\"{pad}\" y=\"{h - pad + 14}\">{x0:.3f}</text>"
            f"<text class=lbl x=\"{w - pad - 30}\" y=\"{h - pad + 14}\">{x1:.3f}</text>"
            f"<text class=lbl x=\"4\" y=\"{h - pad}\">{y0:.0f}</text>"
            f"<text class=lbl x=\"4\" y=\"{pad + 4}\">{y1:.0f}</text>")
    return (f"<h2>Models: AP against speed</h2><svg id=chart width=\"{w}\" height=\"{h}\" "
            f"role=img aria-label=\"DensePose AP against inference time\">{axes}{dots}</svg>")


def render_index(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th data-num=\"{1 if num else 0}\">{html.escape(name)}</th>"
                   for name, num in COLUMNS)
    body = "\n".join(_row(r) for r in rows)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
        f"<title>densezoo mirror ({len(rows)} artifacts)</title><style>{STYLE}</style></head>"
        f"<body><h1>densezoo mirror</h1><p>Every file below was verified when the mirror was "
        f"built. Point clients here with <code>DENSEZOO_MIRROR</code>; they verify again.</p>"
        f"{_chart(rows)}"
        f"<p><input id=filter type=search placeholder=\"filter: name, zoo, kind, checksum\" "
        f"aria-label=filter> <span id=count>{len(rows)} artifacts</span></p>"
        f"<table id=artifacts><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"
        f"<script>{SCRIPT}</script></body></html>\n")
