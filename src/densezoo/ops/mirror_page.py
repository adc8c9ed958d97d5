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
h1{font-size:1.3em} input#filter{font-size:1em;padding:.3em;width:24em;max-width:90%}
table{border-collapse:collapse;margin-top:1em;width:100%} th,td{padding:.25em .5em;
border-bottom:1px solid #ddd;text-align:left;vertical-align:top} th{cursor:pointer;
background:#f4f4f4;position:sticky;top:0} td.num{text-align:right;white-space:nowrap}
td.nw,code{white-space:nowrap} code{font-size:.85em}
.hash{display:block;font-family:monospace;font-size:.72em;white-space:nowrap;color:#555}
.name b{white-space:nowrap} .cmd-inline{display:none}
tr.hidden,.hidden{display:none} svg{border:1px solid #ddd;background:#fff;max-width:100%;height:auto}
.dot{fill:#3572b0;opacity:.75} .axis{stroke:#444} .lbl{font-size:10px;fill:#444}
#use{background:#f4f4f4;padding:.5em;display:inline-block}
@media (max-width:1000px){.opt{display:none} .cmd-inline{display:block}
  .hash.sha256{display:none} body{margin:.8em}}
"""

SCRIPT = r"""
(function(){
  var box=document.getElementById('filter'), rows=[].slice.call(document.querySelectorAll('tbody tr'));
  var count=document.getElementById('count');
  var marks=[].slice.call(document.querySelectorAll('#chart [data-name]'));
  function apply(){var q=box.value.toLowerCase(), n=0, shown={};
    rows.forEach(function(r){var hit=r.textContent.toLowerCase().indexOf(q)>=0;
      r.classList.toggle('hidden',!hit); if(hit){n++; shown[r.dataset.name]=1;}});
    marks.forEach(function(m){m.classList.toggle('hidden',!shown[m.dataset.name]);});
    count.textContent=n+' of '+rows.length+' artifacts';}
  var use=document.getElementById('mirror-url');
  if(use&&!use.dataset.fixed&&/^https?:/.test(location.protocol)){
    use.textContent='DENSEZOO_MIRROR='+location.href.replace(/[#?].*$/,'').replace(/index\.html$/,'').replace(/\/$/,'');}
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

# (header, numeric, optional: hidden on narrow screens)
COLUMNS = (("name", False, False), ("zoo", False, True), ("kind", False, True),
           ("size", True, False), ("checksum", False, False), ("AP %", True, False),
           ("s/im", True, True), ("fetch", False, True))


def _row(r: dict[str, Any]) -> str:
    e = html.escape
    hashes = "".join(f"<code class=\"hash {k}\" title=\"{k} {e(str(r[k]))}\">{k} "
                     f"{e(str(r[k]))}</code>" for k in ("md5", "sha256") if r.get(k))
    ap = "" if r.get("ap") is None else f"{r['ap']:.1f}"
    speed = "" if r.get("inference") is None else f"{r['inference']:g}"
    size = "" if r.get("size") is None else human_size(r["size"])
    cells = [
        f"<td class=name><b>{_breakable(r['name'])}</b><div>{e(r.get('description') or '')}</div>"
        f"<code class=cmd-inline>{e(r['command'])}</code></td>",
        f"<td class=\"nw opt\">{e(r['zoo'])}</td>", f"<td class=\"nw opt\">{e(r['kind'])}</td>",
        f"<td class=num data-v=\"{r.get('size') or ''}\">{size}</td>",
        f"<td>{e(r['strength'])}{hashes}</td>",
        f"<td class=num title=\"{e(r.get('ap_metric') or '')}\">{ap}</td>",
        f"<td class=\"num opt\">{speed}</td>",
        f"<td class=opt><code>{e(r['command'])}</code></td>"]
    return f"<tr data-name=\"{e(r['name'])}\">" + "".join(cells) + "</tr>"


def _breakable(name: str) -> str:
    """A name that may break only after ``_`` or ``.`` (never mid-token), escaped."""
    out = html.escape(name)
    for sep in ("_", "."):
        out = out.replace(sep, sep + "<wbr>")
    return out


def _short(name: str) -> str:
    for prefix in ("densepose_rcnn_", "cse.densepose_rcnn_", "evolution.densepose_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name if len(name) <= 24 else name[:23] + "~"


def _label(x: float, y: float, text: str, width: int) -> str:
    """A point's label, to its right, or to its left near the right edge (never cut)."""
    left = x > width - 160
    anchor = ' text-anchor="end"' if left else ""
    return (f"<text class=lbl x=\"{x - 6 if left else x + 6:.1f}\" y=\"{y + 3:.1f}\""
            f"{anchor}>{html.escape(text)}</text>")


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
        f"<g data-name=\"{html.escape(r['name'])}\">"
        f"<circle class=dot cx=\"{sx(r['inference']):.1f}\" cy=\"{sy(r['ap']):.1f}\" r=\"4\">"
        f"<title>{html.escape(r['name'])}: AP {r['ap']:.1f} ({html.escape(r.get('ap_metric') or '')}),"
        f" {r['inference']:g} s/im</title></circle>"
        + _label(sx(r["inference"]), sy(r["ap"]), _short(r["name"]), w) + "</g>" for r in pts)
    axes = (f"<line class=axis x1=\"{pad}\" y1=\"{h - pad}\" x2=\"{w - pad}\" y2=\"{h - pad}\"/>"
            f"<line class=axis x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{h - pad}\"/>"
            f"<text class=lbl x=\"{w / 2 - 60}\" y=\"{h - 8}\">inference time (s/image)</text>"
            f"<text class=lbl x=\"4\" y=\"{pad - 10}\">DensePose AP (%)</text>"
            f"<text class=lbl x=\"{pad}\" y=\"{h - pad + 14}\">{x0:.3f}</text>"
            f"<text class=lbl x=\"{w - pad - 30}\" y=\"{h - pad + 14}\">{x1:.3f}</text>"
            f"<text class=lbl x=\"4\" y=\"{h - pad}\">{y0:.0f}</text>"
            f"<text class=lbl x=\"4\" y=\"{pad + 4}\">{y1:.0f}</text>")
    return (f"<h2>Models: AP against speed</h2><svg id=chart width=\"{w}\" height=\"{h}\" "
            f"viewBox=\"0 0 {w} {h}\" role=img aria-label=\"DensePose AP against inference "
            f"time\">{axes}{dots}</svg>")


def render_index(rows: list[dict[str, Any]], base_url: str | None = None) -> str:
    """The page; ``base_url`` (``mirror build --base-url``) is the value shown for
    ``DENSEZOO_MIRROR`` (served over http without it, the page works it out itself)."""
    head = "".join(f"<th data-num=\"{1 if num else 0}\"{' class=opt' if opt else ''}>"
                   f"{html.escape(name)}</th>" for name, num, opt in COLUMNS)
    use = (f"<code id=mirror-url data-fixed=1>DENSEZOO_MIRROR={html.escape(base_url)}</code>"
           if base_url else "<code id=mirror-url>DENSEZOO_MIRROR=&lt;the URL this folder is "
           "served at&gt;</code>")
    body = "\n".join(_row(r) for r in rows)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
        f"<title>densezoo mirror ({len(rows)} artifacts)</title><style>{STYLE}</style></head>"
        f"<body><h1>densezoo mirror</h1><p>Every file below was verified when the mirror was "
        f"built. Point clients here (they verify again):</p><p id=use>{use}</p>"
        f"{_chart(rows)}"
        f"<p><input id=filter type=search placeholder=\"filter: name, zoo, kind, checksum\" "
        f"aria-label=filter> <span id=count>{len(rows)} artifacts</span></p>"
        f"<table id=artifacts><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"
        f"<script>{SCRIPT}</script></body></html>\n")
