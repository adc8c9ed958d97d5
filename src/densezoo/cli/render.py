"""How results look on a terminal and in ``--json``: the only place that knows rich.

Commands call the API and hand what it returns to these helpers; stdout carries
results only (paths, tables, JSON), stderr carries progress, warnings, errors.
rich is imported only when a table or a bar is drawn, so ``--help`` stays fast.
"""

from __future__ import annotations

import io
import json
import sys
from typing import TYPE_CHECKING, Any, Iterable

import click

from ..urls import redact_text

from ..errors import DensezooError
from ..units import exact_size, human_size, middle

if TYPE_CHECKING:
    from ..results.info import ArtifactInfo


def one_line(err: DensezooError) -> str:
    text = err.headline
    return redact_text(f"{text} (hint: {err.hint})" if err.hint else text)


JSON_SCHEMA_VERSION = 1


def envelope(command: str, items: Any = (), *, errors: Any = (),
             summary: dict[str, Any] | None = None, exit_code: int = 0) -> dict[str, Any]:
    """The one shape of every ``--json`` answer (docs/json.md): what was asked, whether it
    went well, one record per thing the command is about, one record per error."""
    return {"schema": JSON_SCHEMA_VERSION, "command": command, "ok": exit_code == 0,
            "exit_code": exit_code, "items": list(items), "errors": list(errors),
            "summary": summary or {}}


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _ap_text(art) -> str:
    from ..results.info import headline_ap

    ap, _ = headline_ap(art)
    return f"{ap:.1f}" if ap is not None else ""


def _size(info: "ArtifactInfo") -> int | None:
    return info.artifact.size or (info.pin or {}).get("size")


def list_tsv(infos: "list[ArtifactInfo]") -> str:
    """One tab-separated row per artifact, for pipes: name, zoo, kind, size in bytes,
    checksum strength, DensePose AP in percent, which AP, inference s/im, cached, and a
    note: ``deprecated`` and/or ``advisory`` (the upstream file has a known problem)."""
    from ..results.info import headline_ap, inference_time

    rows = []
    for i in infos:
        a = i.artifact
        ap, metric = headline_ap(a)
        speed = inference_time(a)
        size = _size(i)
        rows.append("\t".join([a.name, a.zoo, a.kind, "" if size is None else str(size),
                               str(i.checksum), "" if ap is None else f"{ap:g}", metric or "",
                               "" if speed is None else f"{speed:g}", "yes" if i.path else "no",
                               _note(a)]))
    return "\n".join(rows) + ("\n" if rows else "")


def _note(a) -> str:
    """The marker column: ``deprecated`` and ``advisory`` (a known problem; see ``info``)."""
    return ",".join(w for w, on in (("deprecated", a.deprecated), ("advisory", a.advisory))
                    if on)


def list_table(infos: "list[ArtifactInfo]", *, width: int | None, wide: bool = False) -> str:
    """The terminal view: one table per zoo under a heading that says which AP it reports.
    A name is never broken over lines: when the terminal is too narrow it is shortened in
    the middle with ``…`` (``--wide``, TSV and JSON have it whole); no other value is cut."""
    from rich.console import Console
    from rich.table import Table

    from ..results.info import AP_METRIC, headline_ap

    console = Console(width=width or 400, record=True, highlight=False, file=io.StringIO(),
                      force_terminal=False)
    zoos: dict[str, list] = {}
    for i in infos:
        zoos.setdefault(i.artifact.zoo, []).append(i)
    for zoo, group in zoos.items():
        metric = AP_METRIC.get(zoo) or next((headline_ap(i.artifact)[1] for i in group
                                             if headline_ap(i.artifact)[1]), None)
        heading = f"{zoo}" + (f"  (AP column: DensePose {metric}, in %)" if metric else "")
        console.print(heading, style="bold")
        cols = ["name", "kind", "size", "checksum", "AP"]
        if wide:
            cols[1:1] = ["zoo"]
            cols += ["s/im", "mem GB"]
        cols.append("cached")
        rows = []
        for i in group:
            a = i.artifact
            row = [a.name, a.kind, human_size(_size(i)), str(i.checksum), _ap_text(a)]
            if wide:
                speed = a.metrics.get("speed", {}) if isinstance(a.metrics.get("speed"),
                                                                 dict) else {}
                row[1:1] = [a.zoo]
                row += [f"{speed['inference_s_per_im']:g}" if "inference_s_per_im" in speed
                        else "", f"{speed['train_mem_GB']:g}" if "train_mem_GB" in speed
                        else ""]
            row += [str(i.strength or "yes") if i.path else "", _note(a)]
            rows.append(row)
        if any(r[-1] for r in rows):
            cols.append("note")
        else:
            rows = [r[:-1] for r in rows]
        if width and not wide:
            # Every other column at its widest value, two spaces between columns: the
            # name gets the rest (at least 16 characters).
            others = sum(max(len(c), *(len(r[k]) for r in rows)) for k, c in enumerate(cols)
                         if k) + 2 * (len(cols) - 1)
            room = max(16, width - others)
            rows = [[middle(r[0], room), *r[1:]] for r in rows]
        t = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
        for col in cols:
            t.add_column(col, justify="right" if col in ("size", "AP", "s/im", "mem GB") else
                         "left", no_wrap=True, overflow="ignore", min_width=len(col))
        for r in rows:
            t.add_row(*r)
        console.print(t)
        console.print()
    return console.export_text()


def stdout_console():
    from rich.console import Console

    tty = sys.stdout.isatty()
    return Console(soft_wrap=not tty, width=None if tty else 240, highlight=False)


def table(columns: Iterable[str], rows: Iterable[Iterable[str]], *,
          right: tuple[str, ...] = (), no_wrap: tuple[str, ...] = ()) -> None:
    """Print a borderless table on stdout."""
    from rich.table import Table

    t = Table(box=None, pad_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col, justify="right" if col in right else "left", no_wrap=col in no_wrap)
    for row in rows:
        t.add_row(*row)
    stdout_console().print(t)


_SPEED = (("inference_s_per_im", "inference {:g} s/image"), ("train_s_per_iter",
           "training {:g} s/iteration"), ("train_mem_GB", "training memory {:g} GB"))


def _metric_line(task: str, values: Any) -> str:
    """One task's numbers on the scale ``list`` uses: accuracy in percent (v1 published
    fractions), speed with its units."""
    from ..results.info import percent

    if not isinstance(values, dict):
        return f"{values:g}"
    if task == "speed":
        known = [fmt.format(values[k]) for k, fmt in _SPEED if k in values]
        return ", ".join(known + [f"{k} {v:g}" for k, v in values.items()
                                  if k not in dict(_SPEED)])
    scaled = percent(values)
    return "  ".join(f"{k} {v:.1f}" for k, v in scaled.items()) + "  (%)"


def _checksum_lines(a, pin: dict[str, Any] | None, md5_url: str | None):
    """Each checksum as published, or "unknown", with the first-use pin under it."""
    pin = pin or {}
    when = f" ({str(pin['pinned_at'])[:10]})" if pin.get("pinned_at") else ""
    for key, published in (("md5", a.md5), ("sha256", a.sha256), ("size", a.size)):
        show = exact_size if key == "size" else str
        if published is not None:
            yield key, show(published)
        elif key == "md5" and a.md5_prefix:
            yield key, f"unknown; published prefix {a.md5_prefix}"
        else:
            yield key, "unknown (not published)"
        if published is None and pin.get(key) is not None:
            yield "", f"pinned on first use: {show(pin[key])}{when}"
    if md5_url:
        yield "md5 file", md5_url + (f" (says {pin['sidecar_md5']})"
                                       if pin.get("sidecar_md5") else "")


def info_lines(info: "ArtifactInfo"):
    """(label, value) pairs of ``densezoo info``, credentials already redacted."""
    from ..results.info import headline_ap

    d = info.to_dict()
    a = info.artifact
    yield "name", a.name
    if a.aliases:
        yield "aliases", ", ".join(a.aliases)
    yield "zoo", a.zoo
    yield "kind", a.kind
    if a.description:
        yield "description", a.description
    yield "file", a.file_name
    if a.derived_from:
        yield "derived from", (f"{a.derived_from} (a conversion, not upstream's bytes: its "
                               "checksum is its host's -- the Hub's -- not upstream's)")
    yield "checksum", f"{info.checksum} (published)"
    if info.path is not None:
        yield "strength", str(info.strength)
    for v in info.vouchers:
        digests = ", ".join(f"{k} {v[k]}" for k in ("md5", "sha256", "md5_prefix", "size")
                            if v.get(k) is not None)
        yield "vouched", f"{v['kind']}: {v['source']}" + (f" ({digests})" if digests else "")
    if info.shadows:
        yield "shadows", info.shadows
    for why in (info.record.ignored if info.record is not None else ()):
        yield "ignored", why
    for src in d["sources"]:          # in the order a fetch tries them
        yield src["role"], src["url"]
        yield "", f"verified by: {src['verified_by']}"
    yield from _checksum_lines(a, info.pin, d["md5_url"])
    for conflict in info.pin_conflicts:
        yield "CONFLICT", (f"{conflict} (the published value is used; the pinned bytes are "
                           "not the published file: `densezoo verify` checks the cache)")
    if a.config:
        yield "config", a.config
    ap, metric = headline_ap(a)
    if ap is not None:
        yield metric, f"{ap:.1f} % (DensePose; the AP column of list)"
    for task, values in a.metrics.items():
        yield task, _metric_line(task, values)
    if a.license:
        yield "license", a.license
    if a.requires:
        yield "requires", ", ".join(a.requires)
        if set(info.requires) != set(a.requires):
            yield "closure", ", ".join(info.requires)
    if a.deprecated:
        yield "deprecated", "yes"
    if a.advisory:
        yield "ADVISORY", a.advisory
    if a.note:
        yield "note", a.note
    yield "manifest", a.source
    yield "cached", str(info.path) if info.path else "no"


class RichProgress:
    """Adapter from densezoo's Progress protocol to one shared rich Progress display."""

    def __init__(self, display) -> None:
        self.display = display
        self.task = None

    def start(self, label: str, total: int | None, initial: int = 0) -> None:
        if self.task is None:
            self.task = self.display.add_task(label, total=total, completed=initial)
        else:
            self.display.reset(self.task, total=total, completed=initial)

    def advance(self, n: int) -> None:
        self.display.advance(self.task, n)

    def close(self) -> None:
        if self.task is not None:
            self.display.remove_task(self.task)
            self.task = None


def progress_display():
    """A transient rich display on stderr, in binary units like every summary (MiB)."""
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, ProgressColumn, TextColumn,
                               TimeRemainingColumn)
    from rich.text import Text

    class BinarySpeed(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("?" if speed is None else f"{human_size(int(speed))}/s",
                        style="progress.data.speed")

    class BinarySize(ProgressColumn):
        """Done / total in the units of every summary (``33 B``, ``1.5 MiB``), not rich's
        own (``33 bytes``)."""

        def render(self, task) -> Text:
            total = f"/{human_size(int(task.total))}" if task.total is not None else ""
            return Text(f"{human_size(int(task.completed))}{total}",
                        style="progress.download")

    return Progress(TextColumn("{task.description}"), BarColumn(), BinarySize(),
                    BinarySpeed(), TimeRemainingColumn(), console=Console(stderr=True),
                    transient=True)
