"""The ``densezoo`` command: parse arguments, call the API, render the results.

stdout carries results only (paths, tables, JSON) so scripts can pipe it;
progress, warnings and errors go to stderr.  Every failure becomes one line
and a distinct exit code (see EXIT_CODES below).  rich is imported only when
something is rendered, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import click

from . import __version__, config
from .errors import (EXIT_FAILURE, EXIT_NOT_CACHED, EXIT_OK, EXIT_POLICY, EXIT_USAGE,
                     DensezooError)

if TYPE_CHECKING:
    from .api import ArtifactInfo, Zoo
    from .manifest import Artifact

EXIT_CODES = """\b
Exit codes:
  0  ok                        5  download failed on every URL
  1  other failure             6  not in cache (path, verify NAME, --offline)
  2  usage error               7  invalid manifest
  3  unknown artifact          8  store / disk error
  4  checksum mismatch         9  refused by policy (--strict, http downgrade,
                                  unsafe pickle, hostile archive)

\b
Environment: DENSEZOO_CACHE_DIR, DENSEZOO_MANIFEST, DENSEZOO_MIRROR,
DENSEZOO_STRICT, DENSEZOO_OFFLINE, DENSEZOO_ALLOW_HTTP, DENSEZOO_TIMEOUT,
DENSEZOO_SCAN, DENSEZOO_NO_MARKERS, DENSEZOO_DEBUG (show tracebacks)."""


@dataclass
class App:
    """Per-invocation settings shared by every command (click's ctx.obj)."""

    manifests: tuple[str, ...] = ()
    default_manifests: bool = True
    cache_dir: str | None = None
    quiet: bool = False
    verbose: int = 0
    progress: bool = True
    offline: bool | None = None
    strict: bool | None = None
    allow_http: bool | None = None
    _zoo: "Zoo | None" = field(default=None, repr=False)

    @property
    def zoo(self) -> "Zoo":
        if self._zoo is None:
            from .api import Zoo

            self._zoo = Zoo(manifests=self.manifests, cache_dir=self.cache_dir,
                            default_manifests=self.default_manifests, strict=self.strict,
                            offline=self.offline, allow_http=self.allow_http)
        return self._zoo

    def say(self, message: str) -> None:
        """Informational line on stderr (silenced by -q)."""
        if not self.quiet:
            click.echo(message, err=True)

    def warn(self, message: str) -> None:
        if not self.quiet:
            click.echo(f"warning: {message}", err=True)

    def error(self, err: DensezooError) -> None:
        click.echo(f"error: {_one_line(err)}", err=True)

    def show_progress(self, as_json: bool) -> bool:
        return self.progress and not self.quiet and not as_json and sys.stderr.isatty()


def _one_line(err: DensezooError) -> str:
    text = str(err)
    return f"{text} (hint: {err.hint})" if err.hint else text


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _human_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _headline_metric(metrics: dict[str, Any]) -> str:
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


pass_app = click.make_pass_decorator(App)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _complete_names(ctx: click.Context, param: click.Parameter, incomplete: str):
    """Shell completion of artifact names (from the manifests the command would load)."""
    from click.shell_completion import CompletionItem

    try:
        app = ctx.find_object(App) or App()
        low = incomplete.lower()
        return [CompletionItem(a.name, help=a.kind) for a in app.zoo.catalog.artifacts
                if a.name.lower().startswith(low)][:200]
    except Exception:  # noqa: BLE001 - completion must never crash the shell
        return []


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_CODES)
@click.option("--manifest", "manifests", multiple=True, metavar="PATH",
              type=click.Path(dir_okay=False),
              help="Extra manifest (repeatable; later ones extend or override). "
                   "[env var: DENSEZOO_MANIFEST]")
@click.option("--no-default-manifests", is_flag=True,
              help="Use only the manifests given with --manifest / DENSEZOO_MANIFEST.")
@click.option("--cache-dir", metavar="DIR", envvar=config.ENV_CACHE_DIR, show_envvar=True,
              help="Store root (default: the platform user cache dir).")
@click.option("-q", "--quiet", is_flag=True, help="Only results and errors.")
@click.option("-v", "--verbose", count=True, help="More detail on stderr.")
@click.option("--no-progress", is_flag=True, help="Never draw progress bars.")
@click.option("--offline", is_flag=True, default=None,
              help="Never touch the network. [env var: DENSEZOO_OFFLINE]")
@click.option("--strict", is_flag=True, default=None,
              help="Refuse artifacts without a published checksum. [env var: DENSEZOO_STRICT]")
@click.option("--allow-http", is_flag=True, default=None,
              help="Allow plain-http URLs beyond loopback. [env var: DENSEZOO_ALLOW_HTTP]")
@click.version_option(__version__, "--version", prog_name="densezoo")
@click.pass_context
def cli(ctx: click.Context, manifests, no_default_manifests, cache_dir, quiet, verbose,
        no_progress, offline, strict, allow_http) -> None:
    """Fetch, cache and verify DensePose model-zoo weights and data.

    \b
    densezoo list                        browse every artifact (with AP metrics)
    densezoo fetch ResNet50_FPN_s1x      download + verify; prints the local path
    densezoo verify                      offline re-check of the cache (for CI)
    """
    ctx.obj = App(manifests=manifests, default_manifests=not no_default_manifests,
                  cache_dir=cache_dir, quiet=quiet, verbose=verbose, progress=not no_progress,
                  offline=offline or None, strict=strict or None,
                  allow_http=allow_http or None)


# -- list / info ----------------------------------------------------------------------------

@cli.command("list")
@click.argument("text", required=False)
@click.option("--kind", help="Only this kind (model, proposals, annotations, ...).")
@click.option("--zoo", help="Only this zoo (e.g. densepose-v1).")
@json_option
@pass_app
def list_cmd(app: App, text, kind, zoo, as_json) -> None:
    """List artifacts: name, kind, size, checksum strength, AP, cached state.

    TEXT filters by a substring of the name, file name or description.
    """
    infos = app.zoo.list(kind=kind, zoo=zoo, text=text)
    if as_json:
        _emit_json([i.to_dict() for i in infos])
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("name", "zoo", "kind", "size", "checksum", "AP", "cached"):
        table.add_column(col, justify="right" if col in ("size", "AP") else "left",
                         no_wrap=col == "name")
    for i in infos:
        a = i.artifact
        size = a.size or (i.pin or {}).get("size")
        table.add_row(a.name + (" (deprecated)" if a.deprecated else ""), a.zoo, a.kind,
                      _human_size(size), i.strength, _headline_metric(dict(a.metrics)),
                      "yes" if i.path else "")
    _stdout_console().print(table)
    app.say(f"{len(infos)} artifacts")


def _stdout_console():
    from rich.console import Console

    tty = sys.stdout.isatty()
    return Console(soft_wrap=not tty, width=None if tty else 240, highlight=False)


@cli.command("info")
@click.argument("name", shell_complete=_complete_names)
@json_option
@pass_app
def info_cmd(app: App, name, as_json) -> None:
    """Show an artifact's URLs, checksums, config, metrics, dependencies and cached path."""
    info = app.zoo.info(name)
    if as_json:
        _emit_json(info.to_dict())
        return
    for key, value in _info_lines(info):
        click.echo(f"{key:<13} {value}")


def _info_lines(info: "ArtifactInfo"):
    a = info.artifact
    yield "name", a.name
    yield "zoo", a.zoo
    yield "kind", a.kind
    if a.description:
        yield "description", a.description
    yield "file", a.file_name
    yield "url", a.url
    for m in a.mirrors:
        yield "mirror", m
    for u in a.legacy_urls:
        yield "legacy url", f"{u} (historical, not tried)"
    yield "checksum", info.strength
    for key in ("md5", "sha256", "md5_prefix", "md5_url"):
        if getattr(a, key):
            yield key, getattr(a, key)
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


# -- fetch --------------------------------------------------------------------------------

class _RichProgress:
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


def _progress_display():
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


@cli.command("fetch")
@click.argument("names", nargs=-1, shell_complete=_complete_names)
@click.option("--all", "all_", is_flag=True, help="Every artifact in the loaded manifests.")
@click.option("--kind", help="Every artifact of this kind.")
@click.option("--zoo", help="With --all / --kind: only this zoo.")
@click.option("--with-deps", is_flag=True, help="Also fetch what the artifacts require.")
@click.option("--force", is_flag=True, help="Download again even if a verified copy is cached.")
@click.option("--no-space-check", is_flag=True,
              help="Skip the free-space check (for filesystems that misreport free space).")
@click.option("--no-scan", is_flag=True,
              help="Do not scan .pkl downloads for disallowed imports. [env var: DENSEZOO_SCAN=0]")
@click.option("-j", "--jobs", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Artifacts downloaded at the same time.")
@click.option("--connections", type=click.IntRange(1, 16), default=None,
              help="Range connections per file (default: automatic, more only when one "
                   "connection is capped by the server).")
@click.option("--extract", is_flag=True,
              help="Unpack tarballs once (safely) and print the unpacked folder instead.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results.")
@pass_app
def fetch_cmd(app: App, names, all_, kind, zoo, with_deps, force, no_space_check, no_scan,
              jobs, connections, extract, as_json) -> None:
    """Download, verify and cache artifacts; print each verified local path.

    Progress goes to stderr (only on a terminal); stdout gets one path per line.
    """
    if not names and not all_ and not kind:
        raise click.UsageError("name at least one artifact, or use --all / --kind")
    app.zoo.space_check = not no_space_check
    app.zoo.connections = connections
    if no_scan:
        app.zoo.scan = False
    catalog = app.zoo.catalog
    selected = catalog.select(kind=kind, zoo=zoo) if (all_ or kind) else []
    if (all_ or kind) and not selected:
        asked = " ".join(f"--{k} {v}" for k, v in (("kind", kind), ("zoo", zoo)) if v)
        raise click.UsageError(f"nothing matches {asked or '--all'} "
                               f"(kinds: {', '.join(catalog.kinds())}; "
                               f"zoos: {', '.join(catalog.zoos())})")
    arts = app.zoo.resolve(names, with_deps=with_deps) + selected
    if with_deps and selected:
        arts = catalog.closure(arts)

    display = _progress_display() if app.show_progress(as_json) else None
    progress: Callable | None = (lambda art: _RichProgress(display)) if display else None
    if display:
        display.start()
    try:
        outcomes = app.zoo.fetch_many(arts, force=force, progress=progress, jobs=jobs)
    finally:
        if display:
            display.stop()

    code = EXIT_OK
    rows = []
    for o in outcomes:
        row = o.to_dict()
        rows.append(row)
        if o.error is not None:
            app.error(o.error)
            code = code or o.error.exit_code
            continue
        res = o.result
        assert res is not None
        for w in res.warnings:
            app.warn(w)
        if app.verbose or res.action != "cached":
            detail = f" from {res.url}" if app.verbose and res.url else ""
            app.say(f"{res.action} {o.name} ({_human_size(res.transferred)} transferred, "
                    f"checksum: {res.strength}){detail}")
        shown = str(res.path)
        if extract:
            from .extract import is_archive

            if is_archive(res.path.name):
                try:
                    unpacked = app.zoo.extract(o.name)
                except DensezooError as e:
                    app.error(e)
                    code = code or e.exit_code
                    row["extracted"] = {"error": str(e)}
                    continue
                row["extracted"] = unpacked.to_dict()
                shown = str(unpacked.path)
        if not as_json:
            click.echo(shown)
    if as_json:
        _emit_json(rows)
    sys.exit(code)


# -- verify / path ----------------------------------------------------------------------

@cli.command("verify")
@click.argument("names", nargs=-1, shell_complete=_complete_names)
@click.option("--quick", is_flag=True,
              help="Trust files unchanged (inode, size, mtime, ctime) since their last full hash.")
@click.option("--full", "full", is_flag=True, help="Re-hash every file (the default).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), help="Files hashed in parallel.")
@click.option("--scan", is_flag=True, help="Also scan .pkl files for disallowed imports.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@pass_app
def verify_cmd(app: App, names, quick, full, jobs, scan, as_json) -> None:
    """Re-check cached files against their checksums or pins.  Never uses the network.

    Reports each artifact as ok, missing, corrupt (moved aside), unsafe (with --scan;
    moved aside) or unpinned.  Exit 0 only if all are ok; 4 if any is corrupt; 9 if
    any is unsafe; 6 if a named one is missing; 1 if one is unpinned.
    """
    if quick and full:
        raise click.UsageError("--quick and --full exclude each other")
    report = app.zoo.verify(names or None, quick=quick, jobs=jobs, scan=scan)
    if as_json:
        _emit_json(report.to_dict())
    else:
        for e in report.entries:
            line = f"{e.status:<9} {e.name}"
            if e.detail and e.status != "ok":
                line += f"  ({e.detail})"
            if e.moved_to:
                line += f"  moved to {e.moved_to}"
            click.echo(line)
        counts = report.to_dict()["counts"]
        app.say(", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing cached")
    if report.count("corrupt"):
        sys.exit(4)
    if report.count("unsafe"):
        sys.exit(EXIT_POLICY)
    if report.count("missing"):
        sys.exit(EXIT_NOT_CACHED)
    if report.count("unpinned"):
        sys.exit(EXIT_FAILURE)


@cli.command("path")
@click.argument("name", shell_complete=_complete_names)
@pass_app
def path_cmd(app: App, name) -> None:
    """Print the verified cached path of NAME, or fail with exit 6 (never downloads)."""
    click.echo(str(app.zoo.path(name)))


@cli.command("scan")
@click.argument("targets", nargs=-1, required=True, shell_complete=_complete_names)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@pass_app
def scan_cmd(app: App, targets, as_json) -> None:
    """Check pickles (artifact NAMEs or FILE paths) for imports outside the allow-list.

    Walks the pickle opcodes without unpickling anything.  Exit 0 if every file
    imports only what weight files need (numpy arrays, builtin containers), 9 if
    any imports something else, 1 if a file is not a readable pickle.
    """
    reports = [app.zoo.scan_file(t) for t in targets]
    if as_json:
        _emit_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            if r.findings:
                click.echo(f"unsafe    {r.path}")
                for f in r.findings:
                    click.echo(f"  {f}")
            elif r.error:
                click.echo(f"unreadable {r.path}  ({r.error})")
            else:
                click.echo(f"ok        {r.path}  ({len(r.globals)} allowed imports)")
    if any(r.findings for r in reports):
        sys.exit(EXIT_POLICY)
    if any(r.error for r in reports):
        sys.exit(EXIT_FAILURE)


# -- pin ----------------------------------------------------------------------------------

@cli.command("pin")
@click.argument("names", nargs=-1, shell_complete=_complete_names)
@click.option("--manifest-out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the pinned md5/sha256/size into a copy of the source manifest.")
@json_option
@pass_app
def pin_cmd(app: App, names, manifest_out, as_json) -> None:
    """Show checksums pinned on first download, or write them back into a manifest.

    A maintainer with network access can fetch the unpublished artifacts and run
    `densezoo pin --manifest-out densepose.yaml` to get a reviewable diff.
    """
    zoo = app.zoo
    pins = zoo.write_pins(manifest_out, names or None) if manifest_out else \
        zoo.pins(names or None)
    if as_json:
        _emit_json([p.to_dict() for p in pins])
    else:
        for p in pins:
            click.echo(f"{p.name}  md5 {p.md5 or '-'}  size {p.size if p.size is not None else '-'}"
                       f"  sha256 {p.sha256 or '-'}")
    if manifest_out:
        app.say(f"wrote {len(pins)} pin(s) into {manifest_out}")


# -- cache management ---------------------------------------------------------------

@cli.group("cache")
def cache_group() -> None:
    """Inspect and clean the local store (ls, du, rm, prune)."""


@cache_group.command("ls")
@json_option
@pass_app
def cache_ls(app: App, as_json) -> None:
    """List cached files: artifact, size, state (verified/pinned/unverified/unknown), last used."""
    from .cache import entries

    rows = entries(app.zoo)
    if as_json:
        _emit_json([r.to_dict() for r in rows])
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("name", "size", "state", "last used", "path"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for r in rows:
        table.add_row(r.name or "?", _human_size(r.size), r.state, r.last_used or "",
                      str(r.path))
    _stdout_console().print(table)
    app.say(f"{len(rows)} files, {_human_size(sum(r.size for r in rows))}")


@cache_group.command("du")
@json_option
@pass_app
def cache_du(app: App, as_json) -> None:
    """Disk usage of the store: files, partial downloads, unpacked archives, bad copies."""
    from .cache import usage

    u = usage(app.zoo)
    if as_json:
        _emit_json(u.to_dict())
        return
    for label, n in (("files", u.file_bytes), ("partials", u.partial_bytes),
                     ("unpacked", u.extracted_bytes), ("bad", u.bad_bytes),
                     ("total", u.total)):
        click.echo(f"{label:<9} {_human_size(n):>10}")
    app.say(f"{u.files} files in {u.root}")


def _run_plan(app: App, plan, dry_run: bool, yes: bool, as_json: bool) -> None:
    if as_json and (dry_run or not plan.items):
        _emit_json({**plan.to_dict(), "removed": False})
        return
    for path, size, reason in plan.items:
        if not as_json:
            click.echo(f"{'would remove' if dry_run else 'remove'}  {_human_size(size):>10}  "
                       f"{path}  ({reason})")
    if dry_run or not plan.items:
        app.say(f"{len(plan.items)} item(s), {_human_size(plan.total)}"
                + (" (dry run: nothing removed)" if dry_run else ""))
        return
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("no terminal to confirm on: pass -y to remove, or --dry-run")
        click.confirm(f"Remove {len(plan.items)} item(s), {_human_size(plan.total)}?",
                      abort=True, err=True)
    freed = plan.execute()
    if as_json:
        _emit_json({**plan.to_dict(), "removed": True, "freed": freed})
    app.say(f"freed {_human_size(freed)}")


@cache_group.command("rm")
@click.argument("names", nargs=-1, shell_complete=_complete_names)
@click.option("--all", "all_", is_flag=True, help="Every cached file (pins are kept).")
@click.option("--dry-run", is_flag=True, help="Show what would be removed.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
def cache_rm(app: App, names, all_, dry_run, yes, as_json) -> None:
    """Remove cached artifacts (their pins stay, so a re-download is still checked)."""
    from .cache import plan_remove

    if not names and not all_:
        raise click.UsageError("name artifacts to remove, or pass --all")
    _run_plan(app, plan_remove(app.zoo, None if all_ else list(names)), dry_run, yes, as_json)


@cache_group.command("prune")
@click.option("--dry-run", is_flag=True, help="Show what would be removed.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
def cache_prune(app: App, dry_run, yes, as_json) -> None:
    """Remove stale partials and markers, copies moved aside, and files no manifest names."""
    from .cache import plan_prune

    _run_plan(app, plan_prune(app.zoo), dry_run, yes, as_json)


# -- export, mirrors, bundles ------------------------------------------------------------

@cli.command("export")
@click.argument("names", nargs=-1, required=True, shell_complete=_complete_names)
@click.option("--to", "to", required=True, type=click.Path(file_okay=False), help="Target folder.")
@click.option("--link", type=click.Choice(["symlink", "hardlink", "copy"]), default="symlink",
              show_default=True, help="How to place files (falls back to copy where links fail).")
@click.option("--layout", type=click.Choice(["flat", "densepose"]), default="flat",
              show_default=True,
              help="densepose: DensePoseData/UV_data, eval_data, DensePose_COCO as the code expects.")
@click.option("--force", is_flag=True, help="Replace existing files in the target.")
@json_option
@pass_app
def export_cmd(app: App, names, to, link, layout, force, as_json) -> None:
    """Put verified artifacts into a folder (links by default), fetching them if needed."""
    from pathlib import Path

    from .share import export

    results = export(app.zoo, names, Path(to), link=link,
                     layout=None if layout == "flat" else layout, force=force)
    if as_json:
        _emit_json([r.to_dict() for r in results])
    else:
        for r in results:
            click.echo(str(r.path))
    fallbacks = [r for r in results if r.mode == "copy" and link != "copy"]
    if fallbacks:
        app.warn(f"{len(fallbacks)} file(s) copied because {link}s are not possible there")


@cli.group("mirror")
def mirror_group() -> None:
    """Build a static mirror any web server (nginx, S3, a CDN) can serve."""


@mirror_group.command("build")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("names", nargs=-1, shell_complete=_complete_names)
@click.option("--all", "all_", is_flag=True, help="Every artifact of the loaded manifests.")
@click.option("--base-url", help="Where the tree will be served; written into the manifest.")
@click.option("--link", type=click.Choice(["hardlink", "symlink", "copy"]), default="hardlink",
              show_default=True)
@pass_app
def mirror_build_cmd(app: App, directory, names, all_, base_url, link) -> None:
    """Write DIRECTORY/<host>/<path> for each artifact plus densezoo-mirror.yaml.

    Serve DIRECTORY over http(s) and set DENSEZOO_MIRROR to its URL on the clients:
    every file is still verified, so any mirror is safe.
    """
    from pathlib import Path

    from .share import mirror_build

    if not names and not all_:
        raise click.UsageError("name artifacts, or pass --all")
    out = mirror_build(app.zoo, Path(directory), None if all_ else list(names),
                       base_url=base_url, link=link)
    click.echo(str(out))


@cli.command("bundle")
@click.argument("names", nargs=-1, required=True, shell_complete=_complete_names)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The .tar to write.")
@pass_app
def bundle_cmd(app: App, names, output) -> None:
    """Pack verified artifacts, a manifest subset and checksums into one tar (air gaps)."""
    from pathlib import Path

    from .share import bundle

    packed = bundle(app.zoo, names, Path(output))
    click.echo(output)
    app.say(f"bundled {len(packed)} artifact(s): {', '.join(packed)}")


@cli.command("import")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(exists=True, dir_okay=False))
@json_option
@pass_app
def import_cmd(app: App, bundle_path, as_json) -> None:
    """Add a bundle's files to the store, verifying each before it is added."""
    from pathlib import Path

    from .share import import_bundle

    results, saved = import_bundle(app.zoo, Path(bundle_path))
    if as_json:
        _emit_json({"manifest": str(saved), "artifacts": [r.to_dict() for r in results]})
    else:
        for r in results:
            click.echo(f"{r.action:<15} {r.name}  {r.path}")
    app.say(f"the bundle's manifest is saved as {saved} (use it with --manifest if the "
            "artifacts are not in the shipped manifests)")


# -- doctor, completion ------------------------------------------------------------------

@cli.command("doctor")
@json_option
@pass_app
def doctor_cmd(app: App, as_json) -> None:
    """Check the setup: versions, cache dir (writable, free space), proxies, CA bundle, manifests."""
    from .doctor import diagnose

    report = diagnose(app.zoo)
    if as_json:
        _emit_json(report.to_dict())
    else:
        for c in report.checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<14} {c.detail}")
    if not report.ok:
        sys.exit(EXIT_FAILURE)


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_cmd(shell) -> None:
    """Print the completion script: eval "$(densezoo completion bash)" in ~/.bashrc."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "densezoo", "_DENSEZOO_COMPLETE").source())


# -- entry point --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """Run the CLI, mapping every error to one stderr line and its exit code."""
    try:
        rv = cli.main(args=argv, prog_name="densezoo", standalone_mode=False)
    except DensezooError as e:
        if config.debug():
            traceback.print_exc()
        click.echo(f"error: {_one_line(e)}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code if e.exit_code else EXIT_USAGE)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except KeyboardInterrupt:
        click.echo("error: interrupted; partial downloads are kept and resume next time",
                   err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if config.debug():
            traceback.print_exc()
        click.echo(f"error: unexpected {type(e).__name__}: {e} "
                   "(hint: rerun with DENSEZOO_DEBUG=1 and report the traceback)", err=True)
        sys.exit(EXIT_FAILURE)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


