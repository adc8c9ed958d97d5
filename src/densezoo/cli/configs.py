"""``config``: a detectron2 / Detectron config with every weight and data URL verified."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import click

from ..disk import write_text_atomic
from ..errors import EXIT_OK
from ..urls import redact
from .app import App, json_option, pass_app
from ..printable import printable
from ..units import human_size
from ..results import error_record
from ..units import plural
from .render import one_line, progress_bars, progress_display, table


@click.command("config")
@click.argument("config_file", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the config here instead of stdout.")
@click.option("--dry-run", is_flag=True,
              help="Touch no network: show what each reference resolves to.")
@click.option("-j", "--jobs", type=click.IntRange(1, 32),
              help="Artifacts downloaded at the same time (default: the jobs setting, else 4).")
@click.option("--strict", "strict_here", is_flag=True,
              help="Refuse references that no manifest lists (exit 9).")
@click.option("--seed-iopath", is_flag=True,
              help="Also put the files (and the runtime files the model needs) into "
                   "iopath's download cache, so unmodified detectron2 scripts read them.")
@click.option("--to", "seed_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="With --seed-iopath: the cache folder (default $FVCORE_CACHE, else "
                   "~/.torch/iopath_cache).")
@click.option("--trained", is_flag=True,
              help="Set MODEL.WEIGHTS to the verified model this config trained (a DensePose "
                   "config's own MODEL.WEIGHTS is the ImageNet initialisation).")
@click.option("--safetensors", is_flag=True,
              help="Set MODEL.WEIGHTS to the weights converted to safetensors (densezoo "
                   "convert: proven bit-exact, kept in the store).")
@click.option("--wide", is_flag=True, help="With --dry-run: one table row per file.")
@json_option
@pass_app
def config_cmd(app: App, config_file, output, dry_run, jobs, strict_here, seed_iopath, seed_dir,
               trained, safetensors, wide, as_json) -> None:
    """Resolve CONFIG (follows _BASE_) and print it with every reference verified.

    \b
    Every URL inside any string -- MODEL.WEIGHTS, CSE INIT_FILE, Detectron's
    TRAIN.WEIGHTS and PROPOSAL_FILES tuples, detectron2:// and densezoo:// --
    is matched to a manifest entry (by URL, mirror or legacy URL, so the dead 2018
    hosts resolve), fetched and checked, and replaced by the local path:

    \b
      densezoo config densepose_rcnn_R_50_FPN_s1x.yaml --trained -o verified.yaml
      python train_net.py --config-file verified.yaml --eval-only
      python apply_net.py show densepose_rcnn_R_50_FPN_s1x.yaml \\
          "$(densezoo fetch R_50_FPN_s1x)" image.jpg dp_contour

    A DensePose config's own MODEL.WEIGHTS is the ImageNet initialisation: without
    --trained, --eval-only evaluates that.  apply_net.py takes the model as an
    argument and overwrites MODEL.WEIGHTS with it, so give it a verified path (or
    use densezoo's install(), or a cache seeded with --seed-iopath).

    Each reference ends in one state, and the summary counts them: listed (a
    manifest knows it; --dry-run checks nothing), verified (bytes checked now),
    pinned (nothing published: pinned on this first use, with a warning), not in any
    manifest (left as written, warned; refused with --strict), failed.  The config is
    written (atomically, with -o) only when every listed reference was verified or
    pinned; otherwise nothing is written and the exit code is the first failure's.
    With --seed-iopath the model kind's runtime files are best effort (warned and
    listed) unless --strict.
    """
    if output and not Path(output).absolute().parent.is_dir():
        # Said before anything is fetched, not after every download as a FileNotFoundError.
        folder = Path(output).absolute().parent
        raise click.UsageError(f"-o {output}: the folder {folder} does not exist "
                               f"(create it: mkdir -p {folder})")
    if strict_here:
        app.strict = True
    zoo = app.make_zoo()
    display = progress_display() if (app.show_progress(as_json) and not dry_run) else None
    progress: Callable | None = progress_bars(display, zoo.catalog.shortest_name)
    if display:
        display.start()
    try:
        result = zoo.config(config_file, fetch=not dry_run, jobs=jobs or zoo.settings.jobs,
                            progress=progress, trained=trained, safetensors=safetensors)
    finally:
        if display:
            display.stop()
    for r in result.unverified:
        app.warn(f"{r.key}: {redact(r.value)} is not in any manifest: not verified")
    for r in result.references:
        for w in r.warnings:
            app.warn(f"{r.key}: {w}")
    for o in result.errors:
        assert o.error is not None
        app.error(o.error)
    seeded: list = []
    skipped: list = []
    if seed_iopath and not dry_run and result.complete:
        seeded, skipped = zoo.seed_iopath(result, Path(seed_dir) if seed_dir else None,
                                          strict=app.strict)
        for name, err in skipped:
            app.warn(f"runtime file {name} not seeded ({one_line(err)}); inference does not "
                     "need it, evaluation and visualisation may")
    if output and result.text is not None:
        write_text_atomic(Path(output), result.text)
    runtime = [zoo.info(n) for n in result.runtime] if seed_iopath else []
    code = next((o.error.exit_code for o in result.errors if o.error), EXIT_OK)
    if result.trained:
        app.say(f"MODEL.WEIGHTS: the trained model {result.trained} (--trained)")
    if result.safetensors:
        app.say(f"MODEL.WEIGHTS: {result.safetensors} (converted to safetensors, round trip "
                "exact; load it after densezoo.integrations.detectron2.install())")
    if as_json:
        app.emit([r.to_dict() for r in result.references], exit_code=code, errors=[
            *(error_record(o.error, o.name) for o in result.errors if o.error),
            *(error_record(e, n) for n, e in skipped)], summary={
            "config": str(result.source), "complete": result.complete,
            "trained": result.trained, "safetensors": result.safetensors,
            "counts": result.counts(), "output": output if result.text else None,
            "fetched": [o.to_dict() for o in result.outcomes],
            "seeded": [s.to_dict() for s in seeded],
            "runtime": [{"name": i.name, "url": redact(i.artifact.url), "size": _size_of(i),
                         "cached": i.path is not None, "strength": i.strength}
                        for i in runtime]})
    elif dry_run:
        _preview(result, runtime, wide)
    elif result.text is not None:
        if output:
            app.say(f"wrote {output}")
        else:
            click.echo(result.text, nl=False)
    counts = ", ".join(f"{n} {state}" for state, n in result.counts().items() if n)
    app.say(f"{plural(len(result.references), 'reference')}: {counts or 'none'}"
            + (f"; {plural(len(seeded), 'file')} seeded into the iopath cache" if seeded
               else "")
            + (f", {plural(len(skipped), 'runtime file')} not seeded" if skipped else ""))
    if result.failed:
        app.say("the config was not written: " + ", ".join(
            f"{r.key} ({r.name})" for r in result.failed) + " failed")
    sys.exit(code)


def _size_of(info) -> int | None:
    a = info.artifact
    return a.size if a.size is not None else (info.pin or {}).get("size")


def _preview(result, runtime, wide: bool) -> None:
    """What a run would fetch: every file (the config's, then the model's runtime files
    with --seed-iopath) with its URL, size and whether it is cached, then a total.  One
    block per file, so nothing is cut at 80 columns; ``--wide`` is one row per file."""
    rows = [(r.key, r.name or "(not in any manifest)", str(r.state), str(r.strength or "-"),
             r.size, r.path is not None, r.url or redact(r.value)) for r in result.references]
    rows += [("runtime", i.name, "listed", str(i.strength), _size_of(i), i.path is not None,
              redact(i.artifact.url)) for i in runtime]
    if wide:
        table(("key", "artifact", "state", "checksum", "size", "cached", "url"),
              [(k, n, st, ck, human_size(sz) if sz is not None else "?", "yes" if c else "no",
                u) for k, n, st, ck, sz, c, u in rows], right=("size",))
    else:
        for key, name, state, check, size, cached, url in rows:
            click.echo(printable(key))
            click.echo(printable(f"  {name}  {state}, checksum {check}, "
                                 f"{human_size(size) if size is not None else 'size unknown'}, "
                                 f"{'cached' if cached else 'not cached'}"))
            click.echo(printable(f"  {url}"))
    files = {(n, u): (sz, c) for _, n, _, _, sz, c, u in rows if n != "(not in any manifest)"}
    known = sum(sz for sz, _ in files.values() if sz is not None)
    to_fetch = sum(sz for sz, c in files.values() if sz is not None and not c)
    unknown = sum(1 for sz, _ in files.values() if sz is None)
    click.echo(f"{plural(len(files), 'file')}, {human_size(known)}"
               + (f" + {unknown} of unknown size" if unknown else "")
               + f"; to download: {human_size(to_fetch)} "
               f"({sum(1 for _, c in files.values() if not c)} not cached)")


COMMANDS = (config_cmd,)
