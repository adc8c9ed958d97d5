"""How results look on a terminal and in ``--json``: the only place that knows rich.

Commands call the API and hand what it returns to these helpers; stdout carries
results only (paths, tables, JSON), stderr carries progress, warnings, errors.
rich is imported only when a table or a bar is drawn, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Iterable

import click

from ..errors import DensezooError

if TYPE_CHECKING:
    from ..results import ArtifactInfo


def one_line(err: DensezooError) -> str:
    text = str(err)
    return f"{text} (hint: {err.hint})" if err.hint else text


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def headline_metric(metrics: dict[str, Any]) -> str:
    """The one number a browsing user compares: DensePose AP (or GPSm), else the first one."""
    if not metrics:
        return ""
    task = metrics.get("densepose", next(iter(metrics.values())))
    if isinstance(task, dict):
        for key in ("AP", "GPSm", "GPS"):
            if key in task:
                return f"{task[key]:g}"
        return f"{next(iter(task.values())):g}" if task else ""
    return f"{task:g}"


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
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)
