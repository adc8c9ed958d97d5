"""``export``, ``mirror build``, ``bundle`` and ``import``: verified files leaving the store."""

from __future__ import annotations

import sys

import click

from .app import App, LazyChoice, complete_names, json_option, names_argument, pass_app
from .render import bars
from ..errors import EXIT_OK
from ..results import error_record
from ..printable import printable
from ..units import plural


def _layout_names() -> list[str]:
    from ..ops.export import LAYOUTS       # the table, loaded only when --layout is read

    return list(LAYOUTS)


@click.command("export")
@names_argument(required=True)
@click.option("--to", "to", type=click.Path(file_okay=False),
              help="Target folder (with --layout iopath: default $FVCORE_CACHE, else "
                   "~/.torch/iopath_cache).")
@click.option("--link", type=click.Choice(["symlink", "hardlink", "copy"]), default="symlink",
              show_default=True, help="How to place files (falls back to copy where links fail).")
@click.option("--layout", type=LazyChoice(_layout_names), default="flat",
              show_default=True,
              help="densepose: DensePoseData/UV_data, eval_data, DensePose_COCO as the v1 code "
                   "expects; iopath: detectron2's download cache, so its scripts skip the "
                   "network.")
@click.option("--force", is_flag=True, help="Replace existing files in the target.")
@json_option
@pass_app
def export_cmd(app: App, names, to, link, layout, force, as_json) -> None:
    """Put verified artifacts into a folder (links by default), fetching them if needed.

    \b
      densezoo export densepose_rcnn_R_50_FPN_s1x --layout iopath
      python apply_net.py show cfg.yaml \\
          https://dl.fbaipublicfiles.com/... img.jpg dp_segm
    """
    with bars(app, as_json) as progress:
        results = app.zoo.export(names, to, link=link,
                                 layout=None if layout == "flat" else layout, force=force,
                                 progress=progress)
    fallbacks = [r for r in results if r.mode == "copy" and link != "copy"]
    if as_json:
        app.emit([r.to_dict() for r in results], summary={"copied_instead": len(fallbacks)})
    else:
        for r in results:
            click.echo(printable(r.path))
    if fallbacks:
        app.warn(f"{plural(len(fallbacks), 'file')} copied because {link}s are not possible "
                 "there")
    modes: dict[str, int] = {}
    for r in results:
        modes[r.mode] = modes.get(r.mode, 0) + 1
    app.say(f"exported {plural(len(results), 'file')}: "
            + ", ".join(f"{n} {'as ' if m != 'unchanged' else ''}{m}"
                        for m, n in sorted(modes.items())))


@click.group("mirror")
def mirror_group() -> None:
    """Build a mirror: a static tree for any web server, or an S3-compatible bucket."""


@mirror_group.command("build")
@click.argument("target", metavar="DIRECTORY|s3://BUCKET/PREFIX")
@click.argument("names", nargs=-1, shell_complete=complete_names)
@click.option("--all", "all_", is_flag=True, help="Every artifact of the loaded manifests.")
@click.option("--base-url", help="Where the tree will be served; written into the manifest.")
@click.option("--link", type=click.Choice(["hardlink", "symlink", "copy"]), default="hardlink",
              show_default=True)
@click.option("--cached", is_flag=True,
              help="Only what the cache holds (verified); never downloads.")
@json_option
@pass_app
def mirror_build_cmd(app: App, target, names, all_, base_url, link, cached, as_json) -> None:
    """Write <target>/<host>/<path> for each artifact, densezoo-mirror.yaml and index.html.

    A folder: serve it over http(s), DENSEZOO_MIRROR=http://host/prefix on the clients.

    s3://BUCKET/PREFIX: uploads verified files (multipart when large; objects already
    there with the same size and md5 are skipped) with the standard AWS credentials
    and AWS_ENDPOINT_URL (MinIO, Ceph); clients use DENSEZOO_MIRROR=s3://BUCKET/PREFIX.
    Every file is verified again on arrival, so any mirror is safe.  An artifact that
    cannot be fetched does not stop the others: the manifest and index.html describe
    what the mirror holds, the missing ones are listed, and the exit code is the first
    failure's.  With --cached, artifacts not in the cache are listed and skipped (exit 0).
    """
    if not names and not all_:
        raise click.UsageError("name artifacts, or pass --all")
    with bars(app, as_json) as progress:
        result = app.zoo.mirror_build(target, None if all_ else list(names),
                                      base_url=base_url, link=link, cached=cached,
                                      progress=progress)
    code = result.failed[0][1].exit_code if result.failed else EXIT_OK
    if as_json:
        app.emit([{"name": n, "state": "written"} for n in result.written]
                 + [{"name": n, "state": "unchanged"} for n in result.unchanged]
                 + [{"name": n, "state": "failed" if (n, e) in result.failed else "not cached"}
                    for n, e in result.missing],
                 errors=[error_record(e, n) for n, e in result.failed], exit_code=code,
                 summary={"manifest": result.manifest, "index": result.index})
    else:
        click.echo(result.manifest)
    for name, err in result.missing:
        if (name, err) in result.failed:
            app.error(err)
        elif app.verbose:
            app.say(f"not cached, not in the mirror: {name}")
    app.say(f"{plural(len(result.written), 'file')} written, {len(result.unchanged)} already "
            f"there, {len(result.missing)} missing; browse {result.index}")
    sys.exit(code)


@click.command("bundle")
@names_argument(required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The .tar to write.")
@json_option
@pass_app
def bundle_cmd(app: App, names, output, as_json) -> None:
    """Pack verified artifacts, a manifest subset and checksums into one tar (air gaps)."""
    with bars(app, as_json) as progress:
        packed = app.zoo.bundle(names, output, progress=progress)
    if as_json:
        app.emit([{"name": n, "state": "bundled"} for n in packed],
                 summary={"path": str(output)})
    else:
        click.echo(output)
    app.say(f"bundled {plural(len(packed), 'artifact')}: {', '.join(packed)}")


@click.command("import")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(exists=True, dir_okay=False))
@json_option
@pass_app
def import_cmd(app: App, bundle_path, as_json) -> None:
    """Add a bundle's files to the store, verifying and scanning each before it is added.

    Every entry is tried; one line (or one JSON record) each: imported,
    already-cached or failed with the reason.  Nothing that fails its checks is
    added.  The bundle's manifest is saved under the store's imported/ folder and
    loads automatically from then on.  Exit 0 if every entry is in the store, else
    the exit code of the first failure (4 checksum, 9 unsafe, ...).
    """
    with bars(app, as_json) as progress:
        results, saved = app.zoo.import_bundle(bundle_path, progress=progress)
    failed = [r for r in results if r.error is not None]
    code = failed[0].error.exit_code if failed else EXIT_OK
    if as_json:
        app.emit([r.to_dict() for r in results], summary={"manifest": str(saved)},
                 errors=[error_record(r.error, r.name) for r in failed], exit_code=code)
    else:
        for r in results:
            click.echo(printable(f"{r.action:<15} {r.name}  {r.path}"))
    for r in results:
        for w in r.warnings:
            app.warn(w)
    for r in failed:
        app.error(r.error)
    app.say(f"{len(results) - len(failed)} of {len(results)} in the store; the bundle's "
            f"manifest is saved as {saved} and loads automatically")
    sys.exit(code)


COMMANDS = (export_cmd, mirror_group, bundle_cmd, import_cmd)
