"""``manifest add`` and ``settings``: writing your own manifest, and values you would
otherwise repeat on every command."""

from __future__ import annotations

import sys

import click

from .app import App, json_option, pass_app
from ..units import plural


@click.group("manifest")
def manifest_group() -> None:
    """Write your own manifest entries (checksums computed from the bytes)."""


@manifest_group.command("add")
@click.argument("sources", nargs=-1, required=True, metavar="FILE_OR_URL...")
@click.option("--name", help="The entry's name (one source; default: its file name).")
@click.option("--url", help="For a local FILE: where others download it from (ending in /: "
                            "the file name is appended).")
@click.option("--to", "to", type=click.Path(dir_okay=False), metavar="MANIFEST",
              help="Append to this manifest (created if missing); default: print the entry.")
@click.option("--kind", help="The entry's kind (model, annotations, ...).")
@click.option("--description", help="One line saying what it is.")
@click.option("--zoo", default="local", show_default=True,
              help="The zoo of a manifest created by --to.")
@json_option
@pass_app
def manifest_add_cmd(app: App, sources, name, url, to, kind, description, zoo,
                     as_json) -> None:
    """Compute md5, sha256 and size of FILEs or URLs and write manifest entries.

    \b
      densezoo manifest add ckpt/model_final.pkl --name my_model \\
          --url https://models.example.org/my/model_final.pkl --to ~/my-zoo.yaml
      densezoo manifest add https://example.org/weights.pkl --to ~/my-zoo.yaml
      densezoo settings set manifests ~/my-zoo.yaml      # load it every time

    A URL is downloaded through the verified path first (it lands in the cache); a
    .pkl must pass the pickle scan.  The manifest is checked before it is written
    (atomically); nothing else in it changes.
    """
    added = app.zoo.manifest_add(list(sources), name=name, url=url, to=to, kind=kind,
                                 description=description, zoo=zoo)
    for a in added:
        for w in a.warnings:
            app.warn(w)
    if as_json:
        app.emit([a.to_dict() for a in added],
                 summary={"manifest": str(to) if to else "-", "written": to is not None})
        return
    if to:
        for a in added:
            click.echo(f"{a.name}  md5 {a.md5 or '(not written)'}  size {a.size}")
        app.say(f"added {plural(len(added), 'entry', 'entries')} to {to}")
    else:
        import yaml

        click.echo(yaml.safe_dump([a.entry() for a in added], sort_keys=False), nl=False)


@click.group("settings")
def settings_group() -> None:
    """Values you would repeat on every command: each global option with an
    environment variable, plus jobs and connections.

    \b
      densezoo settings list             # every key: value and where it is from
      densezoo settings get cache_dir    # one value, for scripts
      densezoo settings set jobs 8
      densezoo settings edit             # open the file in $EDITOR

    Flags win over environment variables, which win over the settings file, which
    wins over the default.  The file is DENSEZOO_SETTINGS, else settings.ini in the
    platform's user config dir (written 0600: a mirror URL may hold a password).
    """


@settings_group.command("show")
@json_option
@pass_app
def settings_show_cmd(app: App, as_json) -> None:
    """Every setting's value and where it comes from (flag, env, file, default);
    passwords and tokens in mirror URLs are redacted."""
    from ..api import settings_show
    from ..user_settings import settings_path

    rows = settings_show(**app.flags())
    if as_json:
        app.emit([r.to_dict() for r in rows], summary={"file": str(settings_path())})
        return
    for r in rows:
        click.echo(f"{r.name:<12} {r.text}  ({r.source})")
    app.say(f"settings file: {settings_path()}")


settings_group.add_command(settings_show_cmd, "list")


@settings_group.command("get")
@click.argument("key")
@json_option
@pass_app
def settings_get_cmd(app: App, key, as_json) -> None:
    """Print KEY's effective value (lists one per line; nothing set: nothing printed)."""
    from ..api import settings_get

    r = settings_get(key, **app.flags())
    if as_json:
        app.emit([r.to_dict()])
        return
    value = r.to_dict()["value"]
    for v in value if isinstance(value, list) else [] if value is None else [r.text]:
        click.echo(v)
    app.say(f"({r.source})")


@settings_group.command("set")
@click.argument("key")
@click.argument("values", nargs=-1, required=True)
@json_option
@pass_app
def settings_set_cmd(app: App, key, values, as_json) -> None:
    """Set KEY in the settings file; the value is checked first (nothing is written
    for a bad one).

    \b
    Keys: cache_dir, manifests, mirrors, strict, require, allow_http,
          offline, no_progress, scan, jobs, connections.
    \b
      densezoo settings set cache_dir /data/densezoo
      densezoo settings set mirrors https://mirror.internal/densezoo
      densezoo settings set manifests ~/my-zoo.yaml ~/team-zoo.yaml
      densezoo settings set strict true
      densezoo settings set jobs 8
    """
    from ..api import settings_set
    from ..user_settings import settings_path

    r = settings_set(key, values)
    if as_json:
        app.emit([r.to_dict()], summary={"file": str(settings_path())})
    else:
        app.say(f"{r.name} = {r.text} set in {settings_path()}")


@settings_group.command("unset")
@click.argument("key")
@json_option
@pass_app
def settings_unset_cmd(app: App, key, as_json) -> None:
    """Remove KEY from the settings file (its default applies again)."""
    from ..api import settings_unset
    from ..user_settings import settings_path

    r = settings_unset(key)
    if as_json:
        app.emit([r.to_dict()], summary={"file": str(settings_path())})
    else:
        app.say(f"{r.name} unset in {settings_path()}")


@settings_group.command("edit")
@pass_app
def settings_edit_cmd(app: App) -> None:
    """Open the settings file in $VISUAL / $EDITOR (created with a header if missing);
    it is checked when the editor closes, and a mistake is named (exit 2)."""
    from ..api import settings_show
    from ..user_settings import ensure_file

    path = ensure_file()
    click.edit(filename=str(path))
    settings_show()                      # reads and checks every value: UsageError if bad
    app.say(f"{path}: ok")


@click.command("adopt")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--known", is_flag=True,
              help="Also look where detectron2/iopath ($FVCORE_CACHE, ~/.torch/iopath_cache, "
                   "$TMPDIR/iopath_cache), Detectron (/tmp/detectron-download-cache) and the "
                   "Hugging Face Hub ($HF_HUB_CACHE, $HF_HOME/hub) keep downloads -- only in "
                   "folders you own and nobody else can write.")
@click.option("--dry-run", is_flag=True, help="Say what would be adopted; change nothing.")
@json_option
@pass_app
def adopt_cmd(app: App, paths, known, dry_run, as_json) -> None:
    """Put weights you already have on disk into the store, without downloading.

    \b
      densezoo adopt --known               # detectron2, Detectron and Hub caches
      densezoo adopt ckpt/ ~/Downloads/model_final_162be9.pkl

    PATHs are files or folders (searched recursively).  A file is adopted only when
    its bytes match an entry's full checksums (size first, then md5/sha256: the name
    proves nothing -- renamed copies work, placeholders and LFS pointers do not) and
    it passes the same content check and pickle scan as a download.  It is never
    moved, and never lent: files of the Hugging Face cache, of other users or in
    folders others can write are reflinked or copied; only a file you own alone, in a
    folder only you can write, may be hard-linked.  A Hugging Face snapshot folder
    adopts (its links into the cache's blobs/ are followed; a link leaving the cache is
    listed as skipped).  Entries that publish only an md5 prefix cannot be matched.
    Exit 9 if a matching file was refused (unsafe).
    """
    report = app.zoo.adopt(list(paths), known=known, dry_run=dry_run)
    code = 9 if report.count("refused") else 0
    counts = {k.replace(" ", "_"): report.count(k) for k in
              ("adopted", "would adopt", "already cached", "refused", "no match", "skipped")}
    if as_json:
        app.emit([i.to_dict() for i in report.items], exit_code=code,
                 summary={"looked_at": report.looked_at, **counts, "places": report.places})
        sys.exit(code)
    for i in report.items:
        line = f"{i.state:<15} {i.name or '-'}  {i.path}"
        if i.mode:
            line += f"  ({i.mode})"
        if i.reason:
            line += f"  ({i.reason})"
        click.echo(line)
    if known and app.verbose:
        app.say("looked in: " + ", ".join(report.places))
    found = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if n)
    app.say(f"{plural(report.looked_at, 'file')} looked at: {found or 'nothing matched'}")
    sys.exit(code)


COMMANDS = (manifest_group, settings_group, adopt_cmd)
