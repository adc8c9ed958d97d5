"""First-use pins: listing them, and writing them back into a manifest for review.

A maintainer with network access fetches the unpublished artifacts, then
``densezoo pin --manifest-out FILE`` turns what was pinned into a reviewable
diff of the source manifest (comments, order and formatting kept).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import DensezooError
from ..manifest import Artifact
from ..manifest_edit import set_fields
from ..results import PinInfo
from ..store.files import Store


def list_pins(store: Store, arts: Sequence[Artifact], *, named: bool) -> list[PinInfo]:
    """Pins of ``arts``; unless the artifacts were ``named``, only those actually pinned."""
    out = []
    for a in arts:
        pin = store.read_pin(a) or {}
        if named or pin.get("md5"):
            out.append(PinInfo(a.name, a.source, pin.get("md5"), pin.get("sha256"),
                               pin.get("size"), pin.get("pinned_at")))
    return out


def write_pins(pins: Sequence[PinInfo], out: str | os.PathLike[str]) -> list[PinInfo]:
    """Write pinned md5/sha256/size into a copy of the artifacts' source manifest."""
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
    updates = {p.name: {"md5": p.md5, "sha256": p.sha256, "size": p.size} for p in pins}
    Path(out).write_text(set_fields(text, updates, source=sources[0]), encoding="utf-8")
    return pins
