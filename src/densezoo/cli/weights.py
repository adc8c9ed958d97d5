"""``check`` and ``identify``: which weights are these bytes (their tensors, not their name)."""

from __future__ import annotations

import sys

import click

from ..errors import EXIT_CHECKSUM, EXIT_OK
from .app import App, complete_names, json_option, pass_app


@click.command("check")
@click.argument("target", metavar="NAME|PATH", required=False, shell_complete=complete_names)
@click.option("--as", "as_name", metavar="NAME", shell_complete=complete_names,
              help="Compare with this model's structure (default: the one it is named as).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False), metavar="CFG",
              help="Compare with the model this detectron2 config builds; without NAME|PATH, "
                   "check the weights its MODEL.WEIGHTS will load.")
@json_option
@pass_app
def check_cmd(app: App, target, as_name, config, as_json) -> None:
    """Does this checkpoint fit this model?  Its tensors (read without unpickling) against
    the model's, as detectron2 builds it.

    \b
      densezoo check R_101_FPN_DL_s1x          # the cached file vs its model
      densezoo check ckpt/model_final_162be9.pkl   # any file, by name or bytes
      densezoo check weights.pkl --as R_50_FPN_s1x
      densezoo check --config my_densepose.yaml # what MODEL.WEIGHTS loads

    Prints "structure matches NAME (N tensors)" or the first differences in
    detectron2's words: missing (in the model, not the checkpoint), unexpected (in the
    checkpoint, not the model), a shape in the checkpoint vs in the model.  A config is
    recognised by its folder and name, or -- copied elsewhere -- by its resolved MODEL
    keys.  Exit 0 on a match, 4 on a mismatch, 1 when no structure is known (v1
    Caffe2 models, RPN files, files nothing names).
    """
    report = app.zoo.check_structure(target, as_name=as_name, config=config)
    c = report.check
    code = EXIT_OK if c.ok else EXIT_CHECKSUM if c.status == "mismatch" else 1
    if as_json:
        app.emit([report.to_dict()], exit_code=code, summary={"structure": str(c.status)})
    else:
        click.echo(f"{report.path}: {c.summary(first=False)}")
        for d in c.differences:
            click.echo(f"  {d}")
        more = c.missing + c.unexpected + c.shape - len(c.differences)
        if more > 0:
            click.echo(f"  ... and {more} more")
        app.say(f"compared with {report.against}")
    sys.exit(code)


@click.command("identify")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True,
                type=click.Path(exists=True))
@json_option
@pass_app
def identify_cmd(app: App, paths, as_json) -> None:
    """Which artifact are these bytes?  By full digest, then md5 prefix, then structure.

    Any file or folder (a Hub cache blob, a ComfyUI ckpts/ folder): placeholders, git-lfs
    pointer files, HTML error pages and all-zero arrays are named as what they are.
    Reads and hashes only.  Exit 0 when every file is a known artifact, 1 otherwise.
    """
    found = app.zoo.identify(list(paths))
    code = EXIT_OK if found and all(i.what == "artifact" for i in found) else 1
    if as_json:
        app.emit([i.to_dict() for i in found], exit_code=code,
                 summary={w: sum(i.what == w for i in found) for w in
                          sorted({i.what for i in found})})
    else:
        for i in found:
            names = ", ".join(i.names) or "-"
            click.echo(f"{i.what:<12} {names}  {i.path}")
            click.echo(f"  {i.detail}" + (f" (by {i.by})" if i.by else ""))
    sys.exit(code)


COMMANDS = (check_cmd, identify_cmd)
