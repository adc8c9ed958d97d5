"""``list``, ``info``, ``fetch`` and ``path``: finding artifacts and getting verified copies."""

from __future__ import annotations

import shutil
import sys
from typing import Callable

import click

from ..errors import EXIT_OK
from .app import App, complete_names, json_option, names_argument, pass_app
from ..results import error_record
from ..printable import printable
from ..units import plural
from .render import (human_size, info_lines, list_table, list_tsv, progress_bars,
                     progress_display)


@click.command("list")
@click.argument("text", required=False)
@click.option("--kind", help="Only this kind (model, proposals, annotations, metrics, ...).")
@click.option("--zoo", help="Only this zoo (e.g. densepose-v1).")
@click.option("--all-kinds", is_flag=True,
              help="Also the entries that only carry metrics (kind metrics; hidden by default).")
@click.option("--sort", type=click.Choice(["ap", "speed"]),
              help="ap: best DensePose AP first; speed: fastest inference first.")
@click.option("--wide", is_flag=True, help="Every column and full names (wider than 80).")
@json_option
@pass_app
def list_cmd(app: App, text, kind, zoo, all_kinds, sort, wide, as_json) -> None:
    """List artifacts: name, kind, size, published checksum, DensePose AP, cached strength.

    TEXT filters by a substring of the name, file name or description, or is a shell
    pattern ('ResNet*': the names `fetch 'ResNet*'` would get).  On a terminal
    the artifacts are grouped by zoo, each heading saying which AP it reports (v1: AP
    with GPS; detectron2: GPSm), all in percent.  Every name printed is one fetch and
    info accept: on a narrow terminal the shortest alias is shown, empty columns
    and then kind, checksum, size, note, cached are left out (--wide: every column,
    full names).  In a pipe, tab-separated
    rows: name, zoo, kind, size (bytes), checksum, AP (%), AP metric, inference s/im,
    cached, note (deprecated, advisory).  Entries that only carry another entry's
    metrics are counted in the footer, listed with --kind metrics or --all-kinds.
    """
    z = app.zoo
    infos = z.list(kind=kind, zoo=zoo, text=text, sort=sort, all_kinds=all_kinds)
    if as_json:
        app.emit([i.to_dict() for i in infos],
                 summary={"count": len(infos), "hidden_metrics": infos.hidden})
        return
    if not sys.stdout.isatty():
        click.echo(list_tsv(infos), nl=False)
    else:
        width = None if wide else min(shutil.get_terminal_size().columns, 200)
        click.echo(list_table(infos, width=width, wide=wide, short=z.catalog.shortest_name),
                   nl=False)
    app.say(plural(len(infos), "artifact") + (
        f"; {plural(infos.hidden, 'metrics entry', 'metrics entries')} hidden "
        "(--kind metrics or --all-kinds)" if infos.hidden else ""))


@click.command("info")
@click.argument("name", shell_complete=complete_names)
@json_option
@pass_app
def info_cmd(app: App, name, as_json) -> None:
    """Show an artifact's URLs, checksums (published, or pinned on first use), size,
    config, metrics (AP in percent, as in list), dependencies and cached path.

    NAME may be a name, an alias, a file name, a config path or any URL the entry is
    known under (its url, a mirror, a legacy URL, detectron2://...)."""
    info = app.zoo.info(name)
    if as_json:
        app.emit([info.to_dict()])
        return
    for key, value in info_lines(info):
        key, value = printable(key), printable(value)
        click.echo(f"{key:<13} {value}".rstrip() if key else f"{'':<13} {value}")


@click.command("fetch")
@names_argument()
@click.option("--all", "all_", is_flag=True, help="Every artifact in the loaded manifests.")
@click.option("--kind", help="Every artifact of this kind.")
@click.option("--zoo", help="With --all / --kind: only this zoo.")
@click.option("--with-deps", is_flag=True, help="Also fetch what the artifacts require.")
@click.option("--force", is_flag=True, help="Download again even if a verified copy is cached.")
@click.option("--no-space-check", is_flag=True,
              help="Skip the free-space check (for filesystems that misreport free space).")
@click.option("--no-scan", is_flag=True,
              help="Do not scan .pkl downloads for disallowed imports. [env var: DENSEZOO_SCAN=0]")
@click.option("-j", "--jobs", type=click.IntRange(1, 32),
              help="Artifacts downloaded at the same time (default: the jobs setting, else 4).")
@click.option("--connections", type=click.IntRange(1, 16), default=None,
              help="Range connections per file, at most (default: automatic -- one, then 4-8 "
                   "when the server caps each connection, up to 16 while each keeps its rate; "
                   "fewer whenever the server pushes back).")
@click.option("--extract", is_flag=True,
              help="Unpack tarballs once (safely) and print the unpacked folder instead.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              metavar="CONFIG", help="Every artifact a detectron2/Detectron config references.")
@click.option("--to", "to", type=click.Path(file_okay=False), metavar="DIR",
              help="Also put each verified file in DIR (as `export` does) and print that path.")
@click.option("--link/--copy", "link", default=True,
              help="With --to: a symbolic link to the store (default), or a copy.")
@json_option
@pass_app
def fetch_cmd(app: App, names, all_, kind, zoo, with_deps, force, no_space_check, no_scan,
              jobs, connections, extract, config_file, to, link, as_json) -> None:
    """Download, verify and cache artifacts; print each verified local path.

    Progress goes to stderr (only on a terminal); stdout gets one path per line.

    \b
      densezoo fetch R_50_FPN_s1x --to ckpt/         # ckpt/model_final_162be9.pkl
      densezoo fetch R_50_FPN_s1x --to ckpt/ --copy  # a copy, not a link
    """
    if not names and not all_ and not kind and not config_file:
        raise click.UsageError("name at least one artifact, or use --all / --kind / --config")
    if to and extract:
        raise click.UsageError("--to puts files, --extract unpacks tarballs in the store: "
                               "use one (`densezoo export NAME --layout densepose` unpacks "
                               "into a checkout)")
    z = app.make_zoo(space_check=not no_space_check, connections=connections,
                     scan=False if no_scan else None)
    sel = z.select(names, all=all_, kind=kind, zoo=zoo, with_deps=with_deps,
                   config=config_file)
    sel.check()             # every unknown name at once, before any download
    for r in sel.unlisted:
        app.warn(f"{r.key}: {r.value} is not in any manifest: not verified")

    display = progress_display() if app.show_progress(as_json) else None
    progress: Callable | None = progress_bars(display, z.catalog.shortest_name)
    if display:
        display.start()
    try:
        outcomes = z.fetch_many(sel.artifacts, force=force, progress=progress,
                                jobs=jobs or z.settings.jobs,
                                extract=extract)
    finally:
        if display:
            display.stop()

    placed = _place(z, outcomes, to, link) if to else {}
    code = EXIT_OK
    for o in outcomes:
        res = o.result
        if res is not None:
            for w in res.warnings:
                app.warn(w)
            if o.extracted is not None and o.extracted.action == "repaired":
                app.warn(f"the unpacked folder of {o.name} had changed since it was unpacked "
                         f"({'; '.join(o.extracted.changes)}): unpacked it again")
            if app.verbose or res.action != "cached":
                detail = f" from {res.url}" if app.verbose and res.url else ""
                if app.verbose and (res.connections or 1) > 1:
                    detail += f" over {res.connections} connections"
                app.say(f"{res.action} {o.name} ({human_size(res.transferred)} transferred, "
                        f"{res.strength}){detail}")
        if o.error is not None:
            app.error(o.error)
            code = code or o.error.exit_code
        elif not as_json:
            click.echo(printable(placed.get(o.name, o.path)))
    done = [o.result.action for o in outcomes if o.ok and o.result]
    cached = sum(a == "cached" for a in done)
    summary = {"fetched": len(done) - cached, "cached": cached,
               "failed": sum(not o.ok for o in outcomes)}
    if as_json:
        app.emit([{**o.to_dict(), **({"placed": str(placed[o.name])} if o.name in placed
                                     else {})} for o in outcomes],
                 summary=summary, exit_code=code,
                 errors=[error_record(o.error, o.name) for o in outcomes if o.error])
    if len(outcomes) > 1:
        for line in weak_groups([o.result for o in outcomes if o.result is not None]):
            app.warn(line)
        app.say(", ".join(f"{v} {k}" for k, v in summary.items()))
    sys.exit(code)


def _place(z, outcomes, to: str, link: bool) -> dict:
    """``--to``: each verified file linked or copied into ``to`` by the export API (the
    same placing, file names and collision folders as ``densezoo export``)."""
    ok = [o.name for o in outcomes if o.ok]
    if not ok:
        return {}
    results = z.export(ok, to, link="symlink" if link else "copy")
    return {r.name: r.path for r in results}


_GROUPS = {"origin-pinned": "pinned from their own URL with nothing published",
           "copy-pinned": "only a copy (mirror, Hub, bundle, another user) vouched for",
           "adopted": "adopted from disk with no full checksum",
           "none": "nothing vouches for"}


def weak_groups(results) -> list[str]:
    """One line per weak strength for the files that entered the store in this run
    ("3 files only a copy ... vouched for (copy-pinned): a, b, c")."""
    by: dict[str, list[str]] = {}
    for r in results:
        if r.entered and str(r.strength) in _GROUPS:
            by.setdefault(str(r.strength), []).append(r.name)
    return [f"{plural(len(names), 'file')} {_GROUPS[word]} ({word}): {', '.join(names)}"
            for word, names in by.items()]


@click.command("path")
@click.argument("name", shell_complete=complete_names)
@json_option
@pass_app
def path_cmd(app: App, name, as_json) -> None:
    """Print the verified cached path of NAME, or fail with exit 6 (never downloads)."""
    res = app.zoo.locate(name)
    for w in res.warnings:
        app.warn(w)
    if as_json:
        app.emit([res.to_dict()])
    else:
        click.echo(printable(res.path))


COMMANDS = (list_cmd, info_cmd, fetch_cmd, path_cmd)
