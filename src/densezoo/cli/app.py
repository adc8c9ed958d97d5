"""The root ``densezoo`` group, its global options, and the per-invocation ``App``.

Every command module registers itself on ``cli`` and reaches the API only
through ``App.zoo`` (or ``App.make_zoo`` for commands with their own settings).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from ..version import __version__
from ..errors import DensezooError
from ..settings import ENV_CACHE_DIR
from .render import label, one_line, shown

if TYPE_CHECKING:
    from ..api import Zoo

EXIT_CODES = """\b
Exit codes:
  0  ok                        5  download failed on every URL
  1  other failure             6  not in cache (path, verify NAME, --offline)
  2  usage error               7  invalid manifest, config or bundle
  3  unknown artifact          8  store / disk error
  4  checksum mismatch         9  refused by policy (--strict, http downgrade,
                                  unsafe pickle, hostile archive)

\b
Environment: DENSEZOO_CACHE_DIR, DENSEZOO_MANIFEST, DENSEZOO_MIRROR
(http(s)://, s3:// or hf://), DENSEZOO_STRICT, DENSEZOO_OFFLINE,
DENSEZOO_ALLOW_HTTP, DENSEZOO_JOBS, DENSEZOO_CONNECTIONS,
DENSEZOO_NO_PROGRESS, DENSEZOO_TIMEOUT, DENSEZOO_MIN_RATE, DENSEZOO_SCAN,
DENSEZOO_NO_MARKERS, DENSEZOO_MAX_UNPACK_BYTES, DENSEZOO_MAX_UNPACK_MEMBERS,
DENSEZOO_DEBUG (show tracebacks); for s3:// the standard AWS_* variables
(AWS_ENDPOINT_URL for MinIO/Ceph); FVCORE_CACHE for --layout iopath;
DENSEZOO_SETTINGS (the settings file: `densezoo settings`); for hf://
HF_ENDPOINT, HF_TOKEN (or `hf auth login`), HF_HUB_CACHE / HF_HOME (the HF
cache, read before the Hub is asked) and HF_HUB_OFFLINE=1 (the Hub is never
asked); `densezoo doctor` shows them."""



class LazyChoice(click.Choice):
    """A Choice whose values come from a library table, read only when needed (so every
    command's start-up does not import the module that owns the table)."""

    def __init__(self, load) -> None:
        self._load = load
        self._loaded: list[str] | None = None
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self):
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    @choices.setter
    def choices(self, value) -> None:
        pass

@dataclass
class App:
    """Per-invocation settings shared by every command (click's ctx.obj)."""

    manifests: tuple[str, ...] = ()
    default_manifests: bool = True
    cache_dir: str | None = None
    quiet: int = 0                 # -q: no info lines; -qq: no warnings either
    verbose: int = 0
    json: bool = False             # --json: results (and errors) as one JSON envelope
    cache_dir_flag: bool = False   # --cache-dir was given (not only DENSEZOO_CACHE_DIR)
    progress: bool = True
    offline: bool | None = None
    strict: bool | None = None
    require: str | None = None
    allow_http: bool | None = None
    mirrors: tuple[str, ...] = ()
    _zoo: "Zoo | None" = field(default=None, repr=False)

    def make_zoo(self, **overrides: Any) -> "Zoo":
        """The Zoo for this invocation; a command's own options go in ``overrides``."""
        if self._zoo is None:
            from ..api import Zoo

            self._zoo = Zoo(manifests=self.manifests, cache_dir=self.cache_dir,
                            default_manifests=self.default_manifests, strict=self.strict,
                            require=self.require,
                            offline=self.offline, allow_http=self.allow_http,
                            mirrors=self.mirrors or None, **overrides)
        return self._zoo

    def flags(self) -> dict[str, Any]:
        """The global options given on this command line, by settings key (None: not
        given): they win over the environment and the settings file."""
        return dict(cache_dir=self.cache_dir if self.cache_dir_flag else None,
                    manifests=self.manifests or None, mirrors=self.mirrors or None,
                    strict=self.strict, require=self.require, offline=self.offline,
                    allow_http=self.allow_http,
                    no_progress=None if self.progress else True)

    @property
    def zoo(self) -> "Zoo":
        return self.make_zoo()

    def say(self, message: str) -> None:
        """Informational line on stderr (silenced by -q, and by --json: the envelope says it)."""
        if not self.quiet and not self.json:
            click.echo(shown(message, newlines=True), err=True)

    def warn(self, message: str) -> None:
        """Warnings are shown even with -q (as pip does): a first-use pin or an unverified
        file is exactly what a quiet CI log must still say.  -qq silences them too."""
        if self.quiet < 2:
            click.echo(f"{label('warning')} {shown(message, newlines=True)}", err=True)

    def emit(self, items: Any = (), *, errors: Any = (), summary: dict[str, Any] | None = None,
             exit_code: int = 0) -> None:
        """Print the one JSON envelope every ``--json`` command answers with (docs/json.md)."""
        from .render import emit_json, envelope

        ctx = click.get_current_context()
        emit_json(envelope(ctx.command_path.partition(" ")[2], items, errors=errors,
                           summary=summary, exit_code=exit_code))

    def error(self, err: DensezooError) -> None:
        click.echo(f"{label('error')} {one_line(err)}", err=True)
        for line in err.details:
            click.echo(f"  {shown(line)}", err=True)

    def show_progress(self, as_json: bool) -> bool:
        """Bars on a terminal only, unless --no-progress / DENSEZOO_NO_PROGRESS / the
        settings file's no_progress say never."""
        return (self.progress and not self.quiet and not as_json and sys.stderr.isatty()
                and not self.zoo.settings.no_progress)


pass_app = click.make_pass_decorator(App)

# The strength words (results.Strength), strongest first; "none" is no bar.
STRENGTHS = click.Choice(["verified", "cross-checked", "prefix", "origin-pinned",
                          "copy-pinned", "adopted"], case_sensitive=False)


def _json_flag(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """``--json`` after the command, or before it (``densezoo --json list``)."""
    app = ctx.find_object(App)
    if value and app is not None:
        app.json = True
    return value or (app is not None and app.json)


json_option = click.option("--json", "as_json", is_flag=True, callback=_json_flag,
                           help="One JSON document on stdout, errors included (docs/json.md).")


def complete_names(ctx: click.Context, param: click.Parameter, incomplete: str):
    """Shell completion of artifact names (from the manifests the command would load)."""
    from click.shell_completion import CompletionItem

    try:
        app = ctx.find_object(App) or App()
        low = incomplete.lower()
        return [CompletionItem(a.name, help=a.kind) for a in app.zoo.catalog.artifacts
                if a.name.lower().startswith(low)][:200]
    except Exception:  # noqa: BLE001 - completion must never crash the shell
        return []


def _global(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """A global option given after the command: applied to the invocation's App (the
    Zoo is built later, when the command first needs it)."""
    app = ctx.find_object(App)
    if app is None or value in (None, False, 0, ()):
        return
    name = param.name
    if name in ("manifests", "mirrors"):
        setattr(app, name, (*getattr(app, name), *value))
    elif name == "no_default_manifests":
        app.default_manifests = False
    elif name == "no_progress":
        app.progress = False
    elif name in ("verbose", "quiet"):
        setattr(app, name, getattr(app, name) + value)
    elif name == "cache_dir":
        app.cache_dir, app.cache_dir_flag = value, True
    elif name == "require":
        app.require = value
    else:
        setattr(app, name, True)


def _global_options() -> list[click.Option]:
    """The root's options again, for after the command (pip and gh accept both places)."""
    o = dict(expose_value=False, callback=_global, hidden=True)
    return [
        click.Option(["--manifest", "manifests"], multiple=True, metavar="PATH",
                     help="Extra manifest (also before the command).", **o),
        click.Option(["--no-default-manifests"], is_flag=True,
                     help="Only the --manifest / DENSEZOO_MANIFEST manifests.", **o),
        click.Option(["--mirror", "mirrors"], multiple=True, metavar="URL",
                     help="Mirror tried before upstream (also before the command).", **o),
        click.Option(["--cache-dir"], metavar="DIR", help="Store root.", **o),
        click.Option(["-q", "--quiet"], count=True,
                     help="Only results, warnings, errors (-qq: no warnings).", **o),
        click.Option(["-v", "--verbose"], count=True, help="More detail on stderr.", **o),
        click.Option(["--no-progress"], is_flag=True, help="Never draw progress bars.", **o),
        click.Option(["--offline"], is_flag=True, help="Never touch the network.", **o),
        click.Option(["--strict"], is_flag=True,
                     help="Refuse bytes weaker than `prefix` (origin-/copy-pinned, adopted).",
                     **o),
        click.Option(["--require"], type=STRENGTHS, metavar="STRENGTH",
                     help="Refuse bytes weaker than STRENGTH (e.g. cross-checked).", **o),
        click.Option(["--allow-http"], is_flag=True, help="Allow plain http beyond loopback.",
                     **o),
    ]


def add_global_options(cmd: click.Command) -> None:
    """Give a command (each command of a group) the global options it does not have."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            add_global_options(sub)
        return
    taken = {opt for p in cmd.params for opt in getattr(p, "opts", ())}
    cmd.params.extend(o for o in _global_options() if not taken & set(o.opts))
    if GLOBAL_NOTE not in (cmd.epilog or ""):
        cmd.epilog = f"{cmd.epilog}\n\n{GLOBAL_NOTE}" if cmd.epilog else GLOBAL_NOTE


GLOBAL_NOTE = ("Global options (--manifest, --mirror, --cache-dir, -q, -v, --no-progress, "
               "--offline, --strict, --require, --allow-http; --json where the command has "
               "it) go "
               "before or after the command: `densezoo --help` lists them.")

# The root's help lists commands by what they are for, not alphabetically.
SECTIONS = (("Get", ("fetch", "path", "config", "adopt", "convert")),
            ("Look", ("list", "info", "identify", "cache")),
            ("Check", ("verify", "check", "scan", "pin", "ledger", "doctor")),
            ("Share", ("export", "mirror", "bundle", "import")),
            ("Set up", ("settings", "manifest", "completion", "help")))
SETTINGS_VERBS = ("set", "get", "show", "list", "unset", "edit")


class LazyGroup(click.Group):
    """The root group: a command's module is imported when that command is used (``list``
    needs neither the config reader nor the mirror builder), all of them for ``--help``.
    ``lazy`` maps a command name to the module (in this package) that defines it; the
    module's ``COMMANDS`` are registered, each with the global options, on import."""

    lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context | None) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Commands grouped by purpose (``SECTIONS``), each with its whole first sentence
        (wrapped to the terminal, never cut with ``...``)."""
        listed = {name for _, names in SECTIONS for name in names}
        sections = [*SECTIONS, ("Other", tuple(n for n in self.list_commands(ctx)
                                                if n not in listed))]
        for title, names in sections:
            rows = []
            for name in names:
                cmd = self.get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit=400)))
            if rows:
                with formatter.section(f"{title} commands"):
                    formatter.write_dl(rows, col_max=12)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        """Like click's, but a typo is compared with every command (not only the ones
        imported so far), and ``config set ...`` -- the habit of git and pip -- says
        where settings live (``config`` here rewrites detectron2 configs)."""
        import os

        name = args[0] if args else ""
        if (name == "config" and len(args) > 1 and args[1] in SETTINGS_VERBS
                and not os.path.exists(args[1])):
            from ..user_settings import settings_path

            raise click.UsageError(
                f"`densezoo config` rewrites detectron2/Detectron configs; settings live in "
                f"`densezoo settings {' '.join(args[1:])}` (file: {settings_path()})", ctx)
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as e:
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
            if close:
                e.message = (f"No such command {name!r}. Did you mean "
                             + " or ".join(repr(c) for c in close) + "?")
            raise

    def get_command(self, ctx: click.Context | None, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy:
            import importlib

            module = importlib.import_module(f"{__package__}.{self.lazy[name]}")
            for command in module.COMMANDS:
                if command.name not in self.commands:
                    add_global_options(command)
                    self.add_command(command)
        return self.commands.get(name)


def names_argument(**kwargs: Any):
    """The NAMES argument most commands take, with artifact-name completion."""
    return click.argument("names", nargs=-1, shell_complete=complete_names, **kwargs)


@click.group(cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80},
             epilog=EXIT_CODES)
@click.option("--manifest", "manifests", multiple=True, metavar="PATH",
              type=click.Path(dir_okay=False),
              help="Extra manifest (repeatable; later ones extend or override). "
                   "[env var: DENSEZOO_MANIFEST]")
@click.option("--no-default-manifests", is_flag=True,
              help="Use only the manifests given with --manifest / DENSEZOO_MANIFEST.")
@click.option("--mirror", "mirrors", multiple=True, metavar="URL",
              help="Mirror tried before upstream: http(s)://host/prefix or s3://bucket/prefix "
                   "(repeatable; replaces DENSEZOO_MIRROR).")
@click.option("--cache-dir", metavar="DIR", envvar=ENV_CACHE_DIR, show_envvar=True,
              help="Store root (default: the platform user cache dir).")
@click.option("-q", "--quiet", count=True,
              help="Only results, warnings and errors; -qq: only results and errors.")
@click.option("-v", "--verbose", count=True, help="More detail on stderr.")
@click.option("--no-progress", is_flag=True, help="Never draw progress bars.")
@click.option("--offline", is_flag=True, default=None,
              help="Never touch the network. [env var: DENSEZOO_OFFLINE]")
@click.option("--strict", is_flag=True, default=None,
              help="Refuse bytes weaker than `prefix`: origin-pinned, copy-pinned, adopted "
                   "(exit 9). [env var: DENSEZOO_STRICT]")
@click.option("--require", type=STRENGTHS, metavar="STRENGTH", default=None,
              help="Refuse bytes weaker than STRENGTH: verified, cross-checked, prefix, "
                   "origin-pinned, copy-pinned, adopted. [env var: DENSEZOO_REQUIRE]")
@click.option("--allow-http", is_flag=True, default=None,
              help="Allow plain-http URLs beyond loopback. [env var: DENSEZOO_ALLOW_HTTP]")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON document on stdout, errors included (docs/json.md); also after "
                   "the command.")
@click.version_option(__version__, "--version", prog_name="densezoo")
@click.pass_context
def cli(ctx: click.Context, manifests, no_default_manifests, mirrors, cache_dir, quiet, verbose,
        no_progress, offline, strict, require, allow_http, as_json) -> None:
    """Fetch, cache and verify DensePose model-zoo weights and data.

    \b
    densezoo list                        browse every artifact (with AP metrics)
    densezoo fetch ResNet50_FPN_s1x      download + verify; prints the local path
    densezoo verify                      offline re-check of the cache (for CI)
    densezoo config my_config.yaml       a detectron2 config, every URL verified
    """
    ctx.obj = App(manifests=manifests, default_manifests=not no_default_manifests,
                  cache_dir=cache_dir, quiet=quiet, verbose=verbose, progress=not no_progress,
                  offline=offline or None, strict=strict or None, require=require,
                  allow_http=allow_http or None, mirrors=tuple(mirrors), json=as_json,
                  cache_dir_flag=ctx.get_parameter_source("cache_dir")
                  is click.core.ParameterSource.COMMANDLINE)
    from .. import events

    # Retries and waits for another process say one line each: on a terminal, or with -v
    # (decided when a line comes: -q / -v may also follow the command).
    app = ctx.obj
    tty = sys.stderr.isatty()

    def listener(line: str) -> None:
        if not app.quiet and (app.verbose or tty):
            click.echo(shown(line), err=True)

    events.listen(listener)
    ctx.call_on_close(lambda: events.listen(None))


@cli.command("help")
@click.argument("command", nargs=-1)
@click.pass_context
def help_cmd(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show the help of densezoo or of one COMMAND (`densezoo help cache ls`)."""
    target: click.Command = cli
    words = ["densezoo"]
    for word in command:
        group = target if isinstance(target, click.Group) else None
        if group is None:
            break
        parent = click.Context(group, info_name=" ".join(words))
        _, sub, _ = group.resolve_command(parent, [word])
        target = sub  # type: ignore[assignment]
        words.append(word)
    with click.Context(target, info_name=" ".join(words)) as sub_ctx:
        click.echo(target.get_help(sub_ctx))
