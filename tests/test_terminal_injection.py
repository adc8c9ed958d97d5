"""Issue 33.5: every string from a manifest, a bundle or a server is made printable
before it reaches a terminal or a TSV row (``densezoo.printable``, used by every
renderer): OSC 52 clipboard writes, window titles, clear screen, full reset, bidi
overrides, and ``\\n``/``\\t`` that forge rows of a piped ``list``."""

from __future__ import annotations

import os
import sys

from conftest import entry, run_in_pty
from densezoo.printable import printable

OSC52 = "\x1b]52;c;ZWNobyBvd25lZA==\x07"        # write "echo owned" to the clipboard
TITLE = "\x1b]0;sudo me\x07"
RESET = "\x1bc\x1b[2J"
C1_CSI = "\x9b31m"
BIDI = "\u202e"


def _raw(text: str, *, tty: bool = False) -> bool:
    """A hostile sequence reached the output as itself (on a terminal, rich's own styling
    escapes such as ``ESC[1m`` are expected; OSC, reset and the rest are not)."""
    bad = ("\x1b]", "\x1bc", "\x07", "\x9b", "\u202e") if tty else ("\x1b", "\x07", "\x9b",
                                                                      "\u202e")
    return any(c in text for c in bad)


def test_printable_spells_every_control_and_keeps_the_rest():
    assert printable(f"a{OSC52}b") == "a\\x1b]52;c;ZWNobyBvd25lZA==\\x07b"
    assert printable("zoo\nforged\trow") == "zoo\\nforged\\trow"
    assert printable(f"{C1_CSI}{BIDI}ok") == "\\x9b31m\\u202eok"
    assert printable("DensePose — 55.8 % ü") == "DensePose — 55.8 % ü"
    assert printable("two\nlines\x1b", newlines=True) == "two\nlines\\x1b"


def _hostile(manifest, blob):
    b = blob("inj_model", 2000)
    return manifest(entry(b, description=f"weights{TITLE}{RESET}", note=f"see{OSC52}",
                          metrics={f"AP{C1_CSI}": {"AP": 0.5}}),
                    zoo=f"evil\nforged\tzoo{BIDI}{OSC52}")


def test_info_and_list_print_no_raw_escape(manifest, blob, cli):
    m = _hostile(manifest, blob)
    info = cli("--no-default-manifests", "--manifest", str(m), "info", "inj_model")
    assert info.code == 0, info.err
    assert not _raw(info.out + info.err), info.out
    assert "\\x1b]52;c;" in info.out and "\\x1bc" in info.out      # shown, not obeyed
    for wide in ((), ("--wide",)):
        code, out = run_in_pty([sys.executable, "-m", "densezoo", "--no-default-manifests",
                                "--manifest", str(m), "list", *wide], dict(os.environ))
        assert code == 0 and "inj_model" in out, out
        assert not _raw(out, tty=True) and "\\u202e" in out, out     # the zoo's heading
    tsv = cli("--no-default-manifests", "--manifest", str(m), "list")     # piped: TSV
    assert tsv.code == 0, tsv.err
    rows = tsv.out.splitlines()
    assert len(rows) == 1 and len(rows[0].split("\t")) == 10, rows   # no forged row/column
    assert not _raw(tsv.out)


def test_a_server_s_reason_phrase_never_reaches_the_terminal_raw(server, manifest, blob,
                                                                 cli):
    b = blob("inj_reason", 2000)
    server.fault(b.path, "status", times=10, code=404, reason=f"Not Found{OSC52}{RESET}")
    m = manifest(entry(b))
    r = cli("--no-default-manifests", "--manifest", str(m), "fetch", "inj_reason")
    assert r.code != 0
    assert "Not Found" in r.err and not _raw(r.err), r.err
    assert "\\x1b]52" in r.err


def test_doctor_and_cache_ls_print_no_raw_escape(manifest, blob, cli, cache_dir):
    b = blob("inj_cached", 2000)
    m = _hostile(manifest, blob)
    m2 = manifest(entry(b))
    assert cli("--no-default-manifests", "--manifest", str(m2), "fetch", "inj_cached").code == 0
    planted = next((cache_dir / "files").rglob("inj_cached.bin")).with_name(f"x{OSC52}.bin")
    planted.write_bytes(b"co-tenant")                   # a file name chosen by someone else
    ls = cli("--no-default-manifests", "--manifest", str(m2), "cache", "ls")
    assert ls.code == 0 and "\\x1b]52" in ls.out and not _raw(ls.out + ls.err), ls.out
    doc = cli("--no-default-manifests", "--manifest", str(m), "--mirror",
              f"http://127.0.0.1:9/{OSC52}", "doctor", "--no-probe")
    assert not _raw(doc.out + doc.err), doc.out
