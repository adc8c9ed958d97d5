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
from ..units import human_size

if TYPE_CHECKING:
    from ..results import ArtifactInfo


def one_line(err: DensezooError) -> str:
    text = err.headline
    return redact_text(f"{text} (hint: {err.hint})" if err.hint else text)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _ap_text(art) -> str:
    from ..results import headline_ap

    ap, _ = headline_ap(art)
    return f"{ap:.1f}" if ap is not None else ""


def _size(info: "ArtifactInfo") -> int | None:
    return info.artifact.size or (info.pin or {}).get("size")


def list_tsv(infos: "list[ArtifactInfo]") -> str:
    """One tab-separated row per artifact, for pipes: name, zoo, kind, size in bytes,
    checksum strength, DensePose AP in percent, which AP, inference s/im, cached, and
    ``advisory`` when the upstream file has a known problem (see ``info``)."""
    from ..results import headline_ap, inference_time

    rows = []
    for i in infos:
        a = i.artifact
        ap, metric = headline_ap(a)
        speed = inference_time(a)
        size = _size(i)
        rows.append("\t".join([a.name, a.zoo, a.kind, "" if size is None else str(size),
                               str(i.strength), "" if ap is None else f"{ap:g}", metric or "",
                               "" if speed is None else f"{speed:g}", "yes" if i.path else "no",
                               "advisory" if a.advisory else ""]))
    return "\n".join(rows) + ("\n" if rows else "")


def list_table(infos: "list[ArtifactInfo]", short_name, *, width: int | None,
               wide: bool = False) -> str:
    """The terminal view: one table per zoo under a heading that says which AP it reports;
    values never cut (names fold instead), 80 columns enough unless ``wide``."""
    from rich.console import Console
    from rich.table import Table

    from ..results import AP_METRIC, headline_ap

    console = Console(width=width or 250, record=True, highlight=False, file=io.StringIO(),
                      force_terminal=False)
    zoos: dict[str, list] = {}
    for i in infos:
        zoos.setdefault(i.artifact.zoo, []).append(i)
    for zoo, group in zoos.items():
        metric = AP_METRIC.get(zoo) or next((headline_ap(i.artifact)[1] for i in group
                                             if headline_ap(i.artifact)[1]), None)
        heading = f"{zoo}" + (f"  (AP column: DensePose {metric}, in %)" if metric else "")
        console.print(heading, style="bold")
        t = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
        cols = ["name", "kind", "size", "checksum", "AP"]
        if wide:
            cols[1:1] = ["zoo"]
            cols += ["s/im", "mem GB"]
        cols.append("cached")
        for col in cols:
            t.add_column(col, justify="right" if col in ("size", "AP", "s/im", "mem GB") else
                         "left", overflow="fold" if col == "name" else "ellipsis",
                         no_wrap=col != "name", min_width=len(col))
        for i in group:
            a = i.artifact
            name = ((a.name if wide else short_name(a)) + (" (deprecated)" if a.deprecated
                                                           else "")
                    + (" (!)" if a.advisory else ""))
            row = [name, a.kind, human_size(_size(i)), str(i.strength), _ap_text(a)]
            if wide:
                speed = a.metrics.get("speed", {}) if isinstance(a.metrics.get("speed"),
                                                                 dict) else {}
                row[1:1] = [a.zoo]
                row += [f"{speed['inference_s_per_im']:g}" if "inference_s_per_im" in speed
                        else "", f"{speed['train_mem_GB']:g}" if "train_mem_GB" in speed
                        else ""]
            row.append("yes" if i.path else "")
            t.add_row(*row)
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


def info_lines(info: "ArtifactInfo"):
    """(label, value) pairs of ``densezoo info``, credentials already redacted."""
    d = info.to_dict()
    a = info.artifact
    yield "name", a.name
    yield "zoo", a.zoo
    yield "kind", a.kind
    if a.description:
        yield "description", a.description
    yield "file", a.file_name
    yield "url", d["url"]
    for m in d["mirrors"]:
        yield "mirror", m
    for u in d["legacy_urls"]:
        yield "legacy url", f"{u} (historical, not tried)"
    yield "checksum", info.strength
    for key in ("md5", "sha256", "md5_prefix", "md5_url"):
        if d.get(key):
            yield key, d[key]
    if info.pin:
        for key in ("md5", "sha256", "size"):
            if info.pin.get(key) is not None:
                yield f"pinned {key}", info.pin[key]
        if info.pin.get("sidecar_md5"):
            yield "sidecar md5", info.pin["sidecar_md5"]
    for conflict in info.pin_conflicts:
        yield "CONFLICT", (f"{conflict} (the published value is used; the pinned bytes are "
                           "not the published file: `densezoo verify` checks the cache)")
    yield "size", f"{a.size} bytes" if a.size is not None else "unknown"
    if a.config:
        yield "config", a.config
    for task, values in a.metrics.items():
        if isinstance(values, dict):
            yield f"{task}", "  ".join(f"{k} {v:g}" for k, v in values.items())
        else:
            yield task, f"{values:g}"
    if a.license:
        yield "license", a.license
    if a.requires:
        yield "requires", ", ".join(a.requires)
        if set(info.requires) != set(a.requires):
            yield "closure", ", ".join(info.requires)
    if a.aliases:
        yield "aliases", ", ".join(a.aliases)
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
    from rich.progress import (BarColumn, DownloadColumn, Progress, ProgressColumn, TextColumn,
                               TimeRemainingColumn)
    from rich.text import Text

    class BinarySpeed(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("?" if speed is None else f"{human_size(int(speed))}/s",
                        style="progress.data.speed")

    return Progress(TextColumn("{task.description}"), BarColumn(),
                    DownloadColumn(binary_units=True), BinarySpeed(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)
