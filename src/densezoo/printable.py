"""Text from outside made safe to show: the one helper every renderer passes strings through.

A manifest's url, zoo, kind, description or note, a bundle's manifest, a server's HTTP
reason phrase, a file name a co-tenant chose: any of them may carry terminal control
sequences (OSC 52 writes the clipboard, OSC 0 the window title, ``ESC c`` resets the
terminal, ``ESC [2J`` clears it), bidi overrides that reorder what is read, or a
``\\n``/``\\t`` that forges a row of a piped TSV listing.  ``printable`` spells each such
character as a visible escape (``\\x1b``, ``\\n``, ``\\u202e``) and leaves every other
character alone, so the text stays readable and nothing reaches the terminal raw.

It imports nothing of densezoo: the CLI's renderers and any library message can use it.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI on some terminals), line and
# paragraph separators, bidi embeddings/overrides/isolates, and the BOM / zero-width
# no-break space.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_UNSAFE_KEEP_NL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                             "\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def printable(text: object, *, newlines: bool = False) -> str:
    """``text`` with every control, separator and bidi character spelled as an escape.

    ``newlines`` keeps ``\\n`` as a line break: for a multi-line message densezoo wrote
    itself (a value inside it is still one line: the escapes are applied to it first)."""
    s = text if isinstance(text, str) else str(text)
    return (_UNSAFE_KEEP_NL if newlines else _UNSAFE).sub(_escape, s)
