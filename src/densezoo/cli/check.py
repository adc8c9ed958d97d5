"""``verify``, ``scan`` and ``pin``: re-checking what is cached, and recording trust."""

from __future__ import annotations

import sys

import click

from ..errors import (EXIT_CHECKSUM, EXIT_FAILURE, EXIT_NOT_CACHED, EXIT_OK, EXIT_POLICY)
from .app import App, complete_names, json_option, names_argument, pass_app
from ..printable import printable
from ..units import plural

# The exit code of a verify run: the first of these statuses present decides.  A file
# missing because it was moved aside counts as what it was (corrupt or unsafe) until a
# fetch replaces it or `cache rm` forgets it: a retried CI step must not go green.
VERIFY_EXIT = (("corrupt", EXIT_CHECKSUM), ("unsafe", EXIT_POLICY), ("weak", EXIT_POLICY),
               ("missing", EXIT_NOT_CACHED), ("unpinned", EXIT_FAILURE))


def verify_exit(report) -> int:
    present = {e.quarantined.get("status") if e.quarantined and e.quarantined.get("status")
               in ("corrupt", "unsafe") else str(e.status) for e in report.entries}
    return next((code for status, code in VERIFY_EXIT if status in present), EXIT_OK)


def verify_summary(report) -> str:
    """"40 verified, 3 origin-pinned, 1 copy-pinned, 1 missing": the files that checked
    out, by who vouched for them, then every other state."""
    counts = report.to_dict()["counts"]
    parts = [f"{v} {k}" for k, v in report.strengths().items()]
    parts += [f"{v} {k}" for k, v in counts.items() if v and k not in ("ok",)]
    return ", ".join(parts) or "nothing cached"


@click.command("verify")
@names_argument()
@click.option("--quick", is_flag=True,
              help="Trust files unchanged (inode, size, mtime, ctime) since their last full hash.")
@click.option("--full", "full", is_flag=True, help="Re-hash every file (the default).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), help="Files hashed in parallel.")
@click.option("--scan", is_flag=True, help="Also scan .pkl files for disallowed imports.")
@click.option("--cross-check", is_flag=True,
              help="First ask the Hub for each weak file's Hub copy sha256 (network).")
@click.option("--signature", type=click.Path(dir_okay=False), metavar="LEDGER.sig",
              help="Check a signed ledger (`ledger export --key`) against the store.")
@click.option("--key", type=click.Path(dir_okay=False), metavar="PUBLIC.pem",
              help="With --signature: the signer's EC public key.")
@click.option("--ledger", type=click.Path(dir_okay=False), metavar="LEDGER.json",
              help="With --signature: the ledger (default: the signature's name with .json).")
@json_option
@pass_app
def verify_cmd(app: App, names, quick, full, jobs, scan, cross_check, signature, key, ledger,
               as_json) -> None:
    """Re-check cached files against their checksums or pins.  Never uses the network
    (except --cross-check: the Hub's sha256 of each weak file's Hub copy, no body).

    Reports each artifact as ok (with who vouched for its bytes: verified,
    cross-checked, prefix, origin-pinned, copy-pinned, adopted), missing, corrupt
    (moved aside), unsafe (with --scan; moved aside), unpinned, or weak (below
    --strict / --require); --quick only reports, it never moves or writes anything.
    With no NAME, every file in the store is checked, against the manifest entry it
    was verified against even when that manifest is not loaded now.  A file an
    earlier run moved aside stays reported as missing (quarantined) until a fetch
    replaces it or `cache rm NAME` forgets it.  Works on a read-only cache.

    Exit 0 only if all are ok, whatever their strength; 4 if any is corrupt (or was,
    and is still missing); 9 if any is unsafe (same) or weak; 6 if a named one is
    missing; 1 if one is unpinned.

    With --signature and --key: check, offline, that every file a signed ledger lists
    is in the store with the bytes that were signed: exit 4 naming the first that is
    missing or differs, 9 for a bad signature (altered, another key, another ledger).
    """
    if quick and full:
        raise click.UsageError("--quick and --full exclude each other")
    if signature or key or ledger:
        _verify_signature(app, names, signature, key, ledger, as_json)
    report = _verify_with_bars(app, names or None, as_json, quick=quick, jobs=jobs,
                               scan=scan, cross_check=cross_check)
    code = verify_exit(report)
    if as_json:
        d = report.to_dict()
        app.emit(d["items"], summary={"counts": d["counts"], "strengths": d["strengths"],
                                      "notes": d["notes"]},
                 exit_code=code, errors=_verify_errors(report))
    else:
        for e in report.entries:
            line = f"{e.status:<9} {e.name}"
            if e.strength is not None and e.status == "ok":
                line += f"  ({e.strength})"
            if e.detail and e.status != "ok":
                line += f"  ({e.detail})"
            if e.moved_to:
                line += f"  moved to {e.moved_to}"
            click.echo(printable(line))
        app.say(verify_summary(report))
    if app.verbose:
        for note in report.notes:
            app.say(f"note: {note}")
    sys.exit(code)


# A verify entry's state -> the error type and exit code its record says (docs/json.md).
_VERIFY_ERRORS = {"missing": ("NotCachedError", EXIT_NOT_CACHED),
                  "corrupt": ("ChecksumMismatchError", EXIT_CHECKSUM),
                  "unsafe": ("UnsafeContentError", EXIT_POLICY)}


def _verify_errors(report) -> list[dict]:
    """One ``errors`` record per entry that makes the exit code non-zero for a bad file
    (missing, corrupt, unsafe): a script reading only ``errors`` sees every failure."""
    from ..urls import redact_text

    out = []
    for e in report.entries:
        if str(e.status) in _VERIFY_ERRORS:
            kind, code = _VERIFY_ERRORS[str(e.status)]
            out.append({"name": e.name, "type": kind, "exit_code": code,
                        "message": redact_text(f"{e.name}: {e.status}"
                                               + (f" ({e.detail})" if e.detail else "")),
                        "hint": f"run `densezoo fetch {e.name}`"})
    return out


def _verify_signature(app: App, names, signature, key, ledger, as_json) -> None:
    from pathlib import Path

    if not (signature and key):
        raise click.UsageError("--signature and --key go together (and --ledger with them)")
    if names:
        raise click.UsageError("--signature checks every file the ledger lists; drop NAMES")
    result = app.zoo.verify_signature(Path(signature), Path(key),
                                      ledger=Path(ledger) if ledger else None)
    d = result.to_dict()
    if as_json:
        app.emit(d["items"], summary={"counts": d["counts"], "strengths": d["strengths"],
                                      "notes": []})
    else:
        for item in d["items"]:
            click.echo(f"{item['state']:<9} {item['name']}")
        app.say(f"{plural(len(result.files), 'file')} as signed in {result.signature}")
    sys.exit(EXIT_OK)


@click.command("scan")
@click.argument("targets", nargs=-1, required=True, shell_complete=complete_names)
@json_option
@pass_app
def scan_cmd(app: App, targets, as_json) -> None:
    """Check pickles (artifact NAMEs or FILE paths) for imports outside the allow-list.

    Reads the opcodes the way pickle.load does, without unpickling anything.  Exit 0
    if every file imports only what weight files need (numpy arrays, builtin
    containers) and parses to its final STOP; 9 if any imports something else or
    cannot be followed (a stream the scan cannot follow is never safe).
    """
    reports = [app.zoo.scan_file(t) for t in targets]
    code = EXIT_OK if all(r.ok for r in reports) else EXIT_POLICY
    if as_json:
        app.emit([{"name": t, "state": "ok" if r.ok else "unsafe", **r.to_dict()}
                  for t, r in zip(targets, reports)], exit_code=code,
                 summary={"safe": sum(r.ok for r in reports),
                          "unsafe": sum(not r.ok for r in reports)})
    else:
        for r in reports:
            if r.findings:
                click.echo(printable(f"unsafe    {r.path}"))
                for f in r.findings:
                    click.echo(printable(f"  {f}"))
            elif r.error:
                click.echo(printable(f"unsafe    {r.path}  ({r.reason})"))
            else:
                click.echo(printable(f"ok        {r.path}  ({len(r.globals)} allowed imports)"))
    sys.exit(code)


@click.command("pin")
@names_argument()
@click.option("--manifest-out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the pinned md5/sha256/size into a copy of the source manifest.")
@json_option
@pass_app
def pin_cmd(app: App, names, manifest_out, as_json) -> None:
    """Show checksums pinned on first download, or write them back into a manifest.

    A maintainer with network access can fetch the unpublished artifacts and run
    `densezoo pin --manifest-out densepose.yaml` to get a reviewable diff.  Only
    values the manifest leaves empty are written: a published checksum is never
    changed.  A pin that disagrees with a published value is a conflict: both
    values are named and the exit code is 4.
    """
    zoo = app.zoo
    pins = zoo.write_pins(manifest_out, names or None) if manifest_out else \
        zoo.pins(names or None)
    conflicts = [p for p in pins if p.conflicts]
    if as_json:
        app.emit([p.to_dict() for p in pins], exit_code=EXIT_CHECKSUM if conflicts else EXIT_OK,
                 summary={"manifest_out": manifest_out,
                          "written": sum(bool(p.written) for p in pins),
                          "conflicts": len(conflicts)})
    else:
        for p in pins:
            click.echo(f"{p.name}  md5 {p.md5 or '-'}  size {p.size if p.size is not None else '-'}"
                       f"  sha256 {p.sha256 or '-'}")
    for p in conflicts:
        for c in p.conflicts:
            app.warn(f"conflict: {p.name} {c}")
    if manifest_out:
        for p in pins:
            if p.skipped:
                app.warn(f"{p.name}: not written -- {p.skipped}")
    if manifest_out:
        app.say(f"wrote {plural(sum(bool(p.written) for p in pins), 'pin')} into {manifest_out}"
                + (f"; {plural(len(conflicts), 'conflicting pin')} left as published"
                   if conflicts else ""))
    if conflicts:
        sys.exit(EXIT_CHECKSUM)


COMMANDS = (verify_cmd, scan_cmd, pin_cmd)


def _verify_with_bars(app: App, names, as_json: bool, **kw):
    """``Zoo.verify`` with a bar per file being hashed on a terminal (bytes hashed, rate,
    time left), none when piped; Ctrl-C says what an interrupted verify leaves."""
    from . import Interrupted
    from .render import bars

    try:
        with bars(app, as_json) as progress:
            return app.zoo.verify(names, progress=progress, **kw)
    except KeyboardInterrupt as e:
        raise Interrupted("verify", "no file was changed; a corrupt or unsafe copy found "
                          "before the interrupt may already be moved aside to "
                          f"{app.zoo.store.layout.bad_dir} (run verify again to check the "
                          "rest)") from e
