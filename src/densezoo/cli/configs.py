"""``config``: a detectron2 / Detectron config with every weight and data URL verified."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import click

from ..errors import EXIT_OK
from .app import App, json_option, pass_app
from .render import RichProgress, emit_json, progress_display, table


@click.command("config")
@click.argument("config_file", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the config here instead of stdout.")
@click.option("--dry-run", is_flag=True,
              help="Touch no network: show what each reference resolves to.")
@click.option("-j", "--jobs", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Artifacts downloaded at the same time.")
@click.option("--strict", "strict_here", is_flag=True,
              help="Refuse references that no manifest lists (exit 9).")
@click.option("--seed-iopath", is_flag=True,
              help="Also put the files (and the runtime files the model needs) into "
                   "iopath's download cache, so unmodified detectron2 scripts read them.")
@click.option("--to", "seed_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="With --seed-iopath: the cache folder (default $FVCORE_CACHE, else "
                   "~/.torch/iopath_cache).")
@json_option
@pass_app
def config_cmd(app: App, config_file, output, dry_run, jobs, strict_here, seed_iopath, seed_dir,
               as_json) -> None:
    """Resolve CONFIG (follows _BASE_) and print it with every reference verified.

    \b
    Every URL inside any string -- MODEL.WEIGHTS, CSE INIT_FILE, Detectron's
    TRAIN.WEIGHTS and PROPOSAL_FILES tuples, detectron2:// and densezoo:// --
    is matched to a manifest entry (by URL, mirror or legacy URL, so the dead 2018
    hosts resolve), fetched and checked, and replaced by the local path:

    \b
      densezoo config densepose_rcnn_R_50_FPN_s1x.yaml -o verified.yaml
      python train_net.py --config-file verified.yaml --eval-only

    References in no manifest are listed as "not verified" and left as they are.
    """
    if strict_here:
        app.strict = True
    zoo = app.make_zoo()
    display = progress_display() if (app.show_progress(as_json) and not dry_run) else None
    progress: Callable | None = (lambda art: RichProgress(display)) if display else None
    if display:
        display.start()
    try:
        result = zoo.config(config_file, fetch=not dry_run, jobs=jobs, progress=progress)
    finally:
        if display:
            display.stop()
    for r in result.unverified:
        app.warn(f"{r.key}: {r.value} is not in any manifest: not verified")
    for o in result.errors:
        assert o.error is not None
        app.error(o.error)
    seeded = []
    if seed_iopath and not dry_run and not result.errors:
        seeded = zoo.seed_iopath(result, Path(seed_dir) if seed_dir else None)
    if as_json:
        emit_json({**result.to_dict(), "output": output,
                   "seeded": [s.to_dict() for s in seeded]})
    elif dry_run:
        table(("key", "artifact", "checksum", "cached"),
              [(r.key, r.name or "(not in any manifest)", str(r.strength or "-"),
                str(r.path) if r.path else "") for r in result.references])
    elif result.text is not None:
        if output:
            Path(output).write_text(result.text, encoding="utf-8")
            app.say(f"wrote {output}")
        else:
            click.echo(result.text, nl=False)
    verified = sum(1 for r in result.references if r.name)
    app.say(f"{len(result.references)} reference(s): {verified} verified, "
            f"{len(result.unverified)} not in any manifest"
            + (f", {len(seeded)} file(s) seeded into the iopath cache" if seeded else ""))
    code = next((o.error.exit_code for o in result.errors if o.error), EXIT_OK)
    sys.exit(code)


COMMANDS = (config_cmd,)
