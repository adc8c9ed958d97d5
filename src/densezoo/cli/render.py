"""How results look on a terminal and in ``--json``: the only place that knows rich.

Commands call the API and hand what it returns to these helpers; stdout carries
results only (paths, tables, JSON), stderr carries progress, warnings, errors.
rich is imported only when a table or a bar is drawn, so ``--help`` stays fast.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import click

from ..printable import printable
from ..urls import redact_text

from ..errors import DensezooError
from ..units import exact_size, human_size

if TYPE_CHECKING:
    from pathlib import Path

    from ..results.info import ArtifactInfo


def label(word: str) -> str:
    """``error:`` / ``warning:`` for a stderr line: red / yellow and bold on a terminal,
    plain when piped, with NO_COLOR set (no-color.org) or TERM=dumb."""
    import os

    text = f"{word}:"
    if (not sys.stderr.isatty() or os.environ.get("NO_COLOR")
            or os.environ.get("TERM") == "dumb"):
        return text
    return click.style(text, fg="red" if word == "error" else "yellow", bold=True)


def shown(text: object, *, newlines: bool = False) -> str:
    """What the CLI prints of any text: credentials redacted, controls made visible."""
    return printable(redact_text(str(text)), newlines=newlines)


def cell(text: str):
    """A table cell from outside: printable, and never read as rich markup."""
    from rich.text import Text

    return Text(printable(text))


def one_line(err: DensezooError) -> str:
    text = err.headline
    return shown(f"{text} (hint: {err.hint})" if err.hint else text)


JSON_SCHEMA_VERSION = 1


def envelope(command: str, items: Any = (), *, errors: Any = (),
             summary: dict[str, Any] | None = None, exit_code: int = 0) -> dict[str, Any]:
    """The one shape of every ``--json`` answer (docs/json.md): what was asked, whether it
    went well, one record per thing the command is about, one record per error."""
    return {"schema": JSON_SCHEMA_VERSION, "command": command, "ok": exit_code == 0,
            "exit_code": exit_code, "items": list(items), "errors": list(errors),
            "summary": summary or {}}


def emit_json(data: Any) -> None:
    """Strict JSON only: a NaN or an infinity (a manifest's ``.nan`` metric) is written
    as null, and a note on stderr says which values were (parsers such as JSON.parse,
    jq and Go's encoding/json reject ``NaN``/``Infinity``)."""
    nulled: list[str] = []
    text = json.dumps(_finite(data, "", nulled), indent=2, default=str, allow_nan=False)
    click.echo(text)
    if nulled:
        click.echo(f"note: {len(nulled)} non-finite number(s) written as null (strict JSON "
                   f"has no NaN/Infinity): {printable(', '.join(nulled[:5]))}"
                   + (" ..." if len(nulled) > 5 else ""), err=True)


def _finite(value: Any, where: str, nulled: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        nulled.append(where or "(value)")
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k), nulled)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, f"{where}[{i}]", nulled) for i, v in enumerate(value)]
    return value


def _ap_text(art) -> str:
    from ..results.info import headline_ap

    ap, _ = headline_ap(art)
    return f"{ap:.1f}" if ap is not None else ""


def _size(info: "ArtifactInfo") -> int | None:
    return info.artifact.size or (info.pin or {}).get("size")


def list_tsv(infos: "list[ArtifactInfo]") -> str:
    """One tab-separated row per artifact, for pipes: name, zoo, kind, size in bytes,
    published checksum, DensePose AP in percent, which AP, inference s/im, cached, and a
    note: ``deprecated`` and/or ``advisory`` (the upstream file has a known problem)."""
    from ..results.info import headline_ap, inference_time

    rows = []
    for i in infos:
        a = i.artifact
        ap, metric = headline_ap(a)
        speed = inference_time(a)
        size = _size(i)
        rows.append("\t".join(printable(f) for f in [
            a.name, a.zoo, a.kind, "" if size is None else str(size), str(i.checksum),
            "" if ap is None else f"{ap:g}", metric or "", "" if speed is None else f"{speed:g}",
            "yes" if i.path else "no", _note(a)]))
    return "\n".join(rows) + ("\n" if rows else "")


def _note(a) -> str:
    """The marker column: ``deprecated`` and ``advisory`` (a known problem; see ``info``)."""
    return ",".join(w for w, on in (("deprecated", a.deprecated), ("advisory", a.advisory))
                    if on)


LIST_DROP_ORDER = ("kind", "checksum", "size", "note", "cached")


def list_table(infos: "list[ArtifactInfo]", *, width: int | None, wide: bool = False,
               short: "Callable[[Any], str] | None" = None) -> str:
    """The terminal view: one table per zoo under a heading that says which AP it reports.
    A name is never cut: when the table is too wide each name becomes its shortest
    accepted spelling (``short``, e.g. the alias ``R_50_FPN_s1x``), then columns empty in
    every row go, then the less important ones (``LIST_DROP_ORDER``), and only then do
    other cells wrap (cli/columns.py).  ``--wide`` shows every column and full names."""
    from rich.console import Console

    from ..results.info import AP_METRIC, headline_ap
    from .columns import fit

    console = Console(width=width or 400, record=True, highlight=False, file=io.StringIO(),
                      force_terminal=False)
    zoos: dict[str, list] = {}
    for i in infos:
        zoos.setdefault(i.artifact.zoo, []).append(i)
    for zoo, group in zoos.items():
        metric = AP_METRIC.get(zoo) or next((headline_ap(i.artifact)[1] for i in group
                                             if headline_ap(i.artifact)[1]), None)
        cols = ["name", "kind", "size", "checksum", "AP"]
        if wide:
            cols[1:1] = ["zoo"]
            cols += ["s/im", "mem GB"]
        cols += ["cached", "note"]
        rows = []
        for i in group:
            a = i.artifact
            size = _size(i)        # unknown: blank (a column of unknowns is left out)
            row = [printable(a.name), printable(a.kind), "" if size is None else
                   human_size(size), str(i.checksum), _ap_text(a)]
            if wide:
                speed = a.metrics.get("speed", {}) if isinstance(a.metrics.get("speed"),
                                                                 dict) else {}
                row[1:1] = [printable(a.zoo)]
                row += [f"{speed['inference_s_per_im']:g}" if "inference_s_per_im" in speed
                        else "", f"{speed['train_mem_GB']:g}" if "train_mem_GB" in speed
                        else ""]
            row += [str(i.strength or "unverified") if i.path else "", _note(a)]
            rows.append(row)
        shorter = [[short(i.artifact), *r[1:]] for i, r in zip(group, rows)] if short else None
        fitted = fit(cols, rows, None if wide else width, short_rows=shorter,
                     drop_order=LIST_DROP_ORDER)
        ap_shown = metric and "AP" in fitted.columns
        console.print(cell(f"{zoo}" + (f"  (AP column: DensePose {metric}, in %)" if ap_shown
                                       else "")), style="bold")
        console.print(_rich_table(fitted.columns, fitted.rows))
        console.print()
    return console.export_text()


_RIGHT = ("size", "AP", "s/im", "mem GB")


def _rich_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *,
                right: Sequence[str] = _RIGHT, whole: Sequence[str] = ()):
    """A borderless rich table: the first column (a name) and ``whole`` ones never wrap or
    get cut; the others may wrap when the terminal is narrower than the table."""
    from rich.table import Table

    t = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for k, col in enumerate(columns):
        keep = k == 0 or col in whole
        t.add_column(col, justify="right" if col in right else "left", no_wrap=keep,
                     overflow="ignore" if keep else "fold", min_width=len(col) if keep else None)
    for r in rows:
        t.add_row(*(cell(c) for c in r))
    return t


def stdout_console():
    from rich.console import Console

    tty = sys.stdout.isatty()
    return Console(soft_wrap=not tty, width=None if tty else 240, highlight=False)


def table(columns: Iterable[str], rows: Iterable[Iterable[str]], *,
          right: tuple[str, ...] = (), no_wrap: tuple[str, ...] = ()) -> None:
    """Print a borderless table on stdout (the first column and ``no_wrap`` ones whole)."""
    stdout_console().print(_rich_table(list(columns), [list(r) for r in rows], right=right,
                                       whole=no_wrap))


def home_relative(path: "str | Path") -> str:
    """``path`` with the home folder written ``~`` (a shorter spelling a shell accepts)."""
    import os

    text, home = str(path), os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home.rstrip("/") + "/")):
        return "~" + text[len(home.rstrip("/")):]
    return text


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
    by = {"origin": "from the origin", "copy": "from a copy", "adopted": "from a file on disk"}
    when = ", ".join(x for x in (by.get(pin.get("kind", "")), str(pin.get("at") or "")[:10])
                     if x)
    when = f" ({when})" if when else ""
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
        yield "strength", str(info.strength) if info.strength else (
            "unverified (changed since it was last hashed, or others can write it: "
            "`densezoo verify` says)")
    for v in info.vouchers:
        digests = ", ".join(f"{k} {v[k]}" for k in ("md5", "sha256", "md5_prefix", "size")
                            if v.get(k) is not None)
        yield "vouched", (f"{v['kind']}: {v['source']}" + (f" ({digests})" if digests else "")
                          + (f"; {v['detail']}" if v.get("detail") else ""))
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
    """Adapter from densezoo's Progress protocol to one shared rich Progress display.
    ``name``: what the bar says -- the artifact's (short) name, which ``fetch`` accepts,
    rather than the downloader's file name (every detectron2 file is model_final_*.pkl)."""

    def __init__(self, display, name: str | None = None) -> None:
        self.display = display
        self.name = name
        self.task = None

    def start(self, label: str, total: int | None, initial: int = 0) -> None:
        from ..progress import bar_label

        label = bar_label(label, self.name)
        if self.task is None:
            self.task = self.display.add_task(label, total=total, completed=initial)
        else:
            self.display.reset(self.task, total=total, completed=initial, description=label)

    def advance(self, n: int) -> None:
        self.display.advance(self.task, n)

    def close(self) -> None:
        if self.task is not None:
            self.display.remove_task(self.task)
            self.task = None


def progress_bars(display, short: "Callable[[Any], str]"):
    """The ``progress=`` factory for the API: one bar per artifact on ``display``, named
    by ``short(artifact)`` (the catalog's shortest accepted name); None without one."""
    return (lambda art: RichProgress(display, short(art))) if display else None


@contextlib.contextmanager
def bars(app, as_json: bool):
    """The ``progress=`` for one command's API call: a bar per artifact on a terminal
    (``App.show_progress``), None when piped or with --json/--quiet/--no-progress; the
    display is stopped however the call ends."""
    display = progress_display() if app.show_progress(as_json) else None
    if display:
        display.start()
    try:
        yield progress_bars(display, app.zoo.catalog.shortest_name)
    finally:
        if display:
            display.stop()


def progress_display():
    """A transient rich display on stderr, in binary units like every summary (MiB), one
    line per file at any width: the name and the sizes never wrap, the bar takes what is
    left (at 80 columns too), and below 60 columns the speed and time are left out."""
    import shutil

    from rich.console import Console
    from rich.progress import (BarColumn, Progress, ProgressColumn, TextColumn,
                               TimeRemainingColumn)
    from rich.table import Column
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

    whole = dict(no_wrap=True, overflow="ignore")
    columns = [TextColumn("{task.description}", table_column=Column(**whole)),
               BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=5)),
               BinarySize(table_column=Column(**whole))]
    if shutil.get_terminal_size().columns >= 60:
        columns += [BinarySpeed(table_column=Column(**whole)),
                    TimeRemainingColumn(table_column=Column(**whole))]
    return Progress(*columns, console=Console(stderr=True), transient=True, expand=True)
