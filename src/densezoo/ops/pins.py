"""First-use pins: listing them, and writing them back into a manifest for review.

A maintainer with network access fetches the unpublished artifacts, then
``densezoo pin --manifest-out FILE`` turns what was pinned into a reviewable
diff of the source manifest (comments, order and formatting kept).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..disk import store_errors, write_text_atomic
from ..errors import DensezooError
from ..manifest import Artifact
from ..manifest_edit import set_fields
from ..results.share import PinInfo
from ..store.record import check_digest, check_size
from ..store.trust import pin_conflicts

if TYPE_CHECKING:
    from ..core import Core

FIELDS = ("md5", "sha256", "size")


def list_pins(core: "Core", arts: Sequence[Artifact], *, named: bool) -> list[PinInfo]:
    """Pins of ``arts``; unless the artifacts were ``named``, only those actually pinned.
    Each names where it disagrees with a published value, and which fields a
    ``write_pins`` would fill in: only those the manifest leaves empty, and only from the
    origin's own bytes -- a copy's digest is never written as if it were published."""
    out = []
    for a in arts:
        record = core.trust.record_of(a)
        pin = record.pin
        if pin is None and not named:
            continue
        fills = tuple(k for k in FIELDS if getattr(a, k) is None and pin is not None
                      and getattr(pin, k) is not None)
        skipped = None
        if pin is not None and pin.kind != "origin":
            skipped = (f"pinned from {pin.kind} {pin.source}, not from the origin over https: "
                       f"`densezoo fetch --force {a.name}` with no mirror pins the origin's bytes")
            fills = ()
        out.append(PinInfo(a.name, a.source, pin.md5 if pin else None,
                           pin.sha256 if pin else None, pin.size if pin else None,
                           pin.at if pin else None, pin_conflicts(a, record), fills,
                           f"{pin.kind} {pin.source}" if pin else None, skipped))
    return out


def write_pins(pins: Sequence[PinInfo], out: str | os.PathLike[str]) -> list[PinInfo]:
    """Write pinned values into a copy of the artifacts' source manifest, atomically.

    Published beats pinned: only fields the manifest leaves empty are filled in
    (``PinInfo.written``); a pin that disagrees with a published value changes
    nothing and is returned with its ``conflicts`` for the caller to report.
    """
    pins = [p for p in pins if p.md5]
    if not pins:
        raise DensezooError("nothing is pinned yet",
                            hint="fetch the artifacts first; pins are recorded on download")
    sources = sorted({p.manifest for p in pins})
    if len(sources) > 1:
        raise DensezooError("the pinned artifacts come from several manifests: "
                            + ", ".join(sources),
                            hint="name artifacts from one manifest at a time")
    text = Path(sources[0]).read_text(encoding="utf-8")
    updates = {p.name: {k: _checked(k, getattr(p, k)) for k in p.written}
               for p in pins if p.written and not p.conflicts and not p.skipped}
    written = [p if p.name in updates else replace(p, written=()) for p in pins]
    with store_errors("write the manifest", Path(out).parent):
        write_text_atomic(Path(out), set_fields(text, updates, source=sources[0]))
    return written


def _checked(key: str, value: object) -> object:
    """Every value is validated again right before it is written into a manifest: a pin
    is a file anyone with access to the store could have edited."""
    return check_size(value) if key == "size" else check_digest(key, value)
