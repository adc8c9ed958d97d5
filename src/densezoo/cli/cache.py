"""``cache ls|du|rm|prune``: what the store holds, and removing it safely (plan, then act)."""

from __future__ import annotations

import shutil
import sys

import click

from .app import App, json_option, names_argument, pass_app
from ..printable import printable
from ..units import plural
from .columns import fit
from .render import home_relative, human_size, table


@click.group("cache")
def cache_group() -> None:
    """Inspect and clean the local store (ls, dir, du, rm, prune)."""


@cache_group.command("ls")
@json_option
@pass_app
def cache_ls(app: App, as_json) -> None:
    """List cached files: artifact, size, state, last used, and the manifest it came from.

    States: verified (unchanged since its checksum was checked), pinned (checked
    against a first-use pin), unpinned (nothing vouches for it yet), unverified
    (changed since its last check: run `densezoo verify`), quarantined (moved aside,
    not replaced yet), unknown (no loaded manifest and no record names it).  A file
    fetched with another manifest or imported keeps a record of its entry: its name
    is shown with `*` when that manifest is not loaded now.  Reads only.
    """
    z = app.zoo
    rows = z.cache_entries()
    if as_json:
        app.emit([r.to_dict() for r in rows], summary={
            "count": len(rows), "size": sum(r.size for r in rows)})
        return
    root = z.settings.cache_dir
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    # On a terminal a path is written from ~ (or, narrower, from the store root); piped,
    # whole, for scripts.
    whole = home_relative if width else str
    fitted = fit(CACHE_LS_COLUMNS, [_ls_row(r, whole(r.path)) for r in rows], width,
                 short_rows=[_ls_row(r, _in_store(r.path, root), _short_name(z, r))
                             for r in rows],
                 drop_order=("from", "last used", "size"), always=("path",))
    table(fitted.columns, fitted.rows, right=("size",))     # a path too long wraps, whole
    relative = any(not f.startswith(("/", "~")) for f in
                   (row[fitted.columns.index("path")] for row in fitted.rows))
    app.say(f"{plural(len(rows), 'file')}, {human_size(sum(r.size for r in rows))}"
            + (f"; paths are relative to {home_relative(root)}" if relative else ""))


CACHE_LS_COLUMNS = ("name", "size", "state", "last used", "from", "path")


def _ls_row(r, path: str, name: str | None = None) -> list[str]:
    """One ``cache ls`` row; the name is one ``fetch``/``info`` accept (``name``: a shorter
    accepted spelling; ``*``: known only from the store's record, its manifest is not
    loaded now)."""
    return [(name or r.name or "?") + ("" if r.loaded or r.name is None else "*"),
            human_size(r.size), r.state, r.last_used or "", _short_source(r.source), path]


def _short_name(z, r) -> str | None:
    """The shortest accepted spelling of a loaded entry's name (as narrow ``list``)."""
    if not (r.loaded and r.name):
        return None
    from ..errors import DensezooError

    try:
        return z.catalog.shortest_name(z.catalog.get(r.name))
    except DensezooError:
        return None


def _in_store(path, root) -> str:
    """A cached file's path relative to the store root (the narrow spelling of ``ls``)."""
    import os

    try:
        return os.path.relpath(path, root) if str(path).startswith(str(root)) else str(path)
    except ValueError:
        return str(path)


@cache_group.command("dir")
@json_option
@pass_app
def cache_dir_cmd(app: App, as_json) -> None:
    """Print the store's root folder (--cache-dir, DENSEZOO_CACHE_DIR, the cache_dir
    setting, else the platform cache dir); it need not exist yet."""
    root = app.zoo.settings.cache_dir
    if as_json:
        app.emit(summary={"path": str(root)})
    else:
        click.echo(str(root))


@cache_group.command("du")
@json_option
@pass_app
def cache_du(app: App, as_json) -> None:
    """Disk usage of the store: files, partial downloads, unpacked archives, bad copies,
    temporary files (work in progress, or left by a killed process: `cache prune`)."""
    u = app.zoo.cache_usage()
    if as_json:
        app.emit(summary=u.to_dict())
        return
    for label, n in (("files", u.file_bytes), ("partials", u.partial_bytes),
                     ("unpacked", u.extracted_bytes), ("bad", u.bad_bytes),
                     ("temporary", u.temp_bytes), ("total", u.total)):
        click.echo(f"{label:<10} {human_size(n):>10}")
    app.say(f"{plural(u.files, 'file')} in {u.root}")


def _short_source(source: str | None) -> str:
    """The manifest's file name: shipped ones and imported/ ones are recognisable by it."""
    if not source:
        return ""
    parts = source.replace("\\", "/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 1 and parts[-2] == "imported" else parts[-1]


def _run_plan(app: App, plan, dry_run: bool, yes: bool, as_json: bool) -> None:
    if as_json and (dry_run or not plan.items):
        d = plan.to_dict()
        app.emit(d["items"], summary={"total": d["total"], "freed": 0, "removed": False})
        return
    for path, size, reason in plan.items:
        if not as_json:
            click.echo(printable(f"{'would remove' if dry_run else 'remove'}  "
                                 f"{human_size(size):>10}  {path}  ({reason})"))
    if dry_run or not plan.items:
        app.say(f"{plural(len(plan.items), 'item')}, {human_size(plan.total)}"
                + (" (dry run: nothing removed)" if dry_run else ""))
        return
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("no terminal to confirm on: pass -y to remove, or --dry-run")
        click.confirm(f"Remove {plural(len(plan.items), 'item')}, {human_size(plan.total)}?",
                      abort=True, err=True)
    freed = plan.execute()
    for path, why in plan.skipped:
        app.warn(f"not removed: {path}: {why}")
    if as_json:
        d = plan.to_dict()
        app.emit(d["items"], summary={"total": d["total"], "freed": freed, "removed": True,
                                      "skipped": d["skipped"]})
    app.say(f"freed {human_size(freed)}")


dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would be removed.")
yes_option = click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")


@cache_group.command("rm")
@names_argument()
@click.option("--all", "all_", is_flag=True, help="Every cached file (pins are kept).")
@dry_run_option
@yes_option
@json_option
@pass_app
def cache_rm(app: App, names, all_, dry_run, yes, as_json) -> None:
    """Remove cached artifacts (their pins stay, so a re-download is still checked).

    Also forgets that a NAME was moved aside (quarantined), which `verify` reports
    until a fetch replaces the file or it is removed here."""
    if not names and not all_:
        raise click.UsageError("name artifacts to remove, or pass --all")
    _run_plan(app, app.zoo.plan_remove(None if all_ else names), dry_run, yes, as_json)


@cache_group.command("prune")
@click.option("--orphans", is_flag=True,
              help="Also remove files only a store record names (fetched with a manifest "
                   "that is not loaded now).")
@dry_run_option
@yes_option
@json_option
@pass_app
def cache_prune(app: App, orphans, dry_run, yes, as_json) -> None:
    """Remove stale partials and markers, copies moved aside, and files nobody vouches for.

    A file fetched with `--manifest` or imported from a bundle records the entry it
    was verified against and is kept (plain `verify` checks it) unless --orphans.
    """
    _run_plan(app, app.zoo.plan_prune(orphans=orphans), dry_run, yes, as_json)


COMMANDS = (cache_group,)
