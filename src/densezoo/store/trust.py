"""What "the right bytes" means for an artifact, and how sure densezoo can be of it.

Three sources, strongest first: checksums the manifest publishes, the md5 in
the upstream ``.md5sum`` sidecar, and the pin recorded on first download.  A
mirror is never one of them (it is transport, not a trust root).  Every other
module asks here instead of reading manifest fields or pins itself, so there is
one answer to "is this artifact checked, and against what".
"""

from __future__ import annotations

from ..hashing import Expected
from ..manifest import Artifact
from ..results import Strength
from ..urls import redact
from .files import Store


def pin_from_origin(art: Artifact, pin: dict) -> bool:
    """Whether a pin was taken from the entry's own ``url`` (the origin), not a mirror.
    Pins written before this was recorded count as the origin's when their URL is it."""
    if "origin" in pin:
        return bool(pin["origin"])
    return pin.get("url") == redact(art.url)


def has_full(expected: Expected) -> bool:
    """A full checksum (md5 or sha256) is known: enough against an adversary.  An md5
    prefix is not: 6 hex digits are 24 bits, matched by brute force in ~20 s."""
    return bool(expected.md5 or expected.sha256)


def declared_strength(art: Artifact) -> Strength:
    """What the manifest alone promises (pins not considered)."""
    if art.md5 or art.sha256:
        return Strength.FULL
    if art.md5_url:
        return Strength.SIDECAR
    if art.md5_prefix:
        return Strength.PREFIX
    return Strength.NONE


def declared(art: Artifact) -> Expected:
    """The size and checksums the manifest entry itself states."""
    return Expected(size=art.size, md5=art.md5, sha256=art.sha256, md5_prefix=art.md5_prefix,
                    sources={k: "manifest" for k in ("size", "md5", "sha256", "md5_prefix")
                             if getattr(art, k) is not None})


def pin_conflicts(art: Artifact, pin: dict | None) -> tuple[str, ...]:
    """Where a first-use pin disagrees with what the manifest now publishes, each as
    "md5: published X, pinned Y".  Published wins (``expected`` ignores the pin); the
    disagreement is still news: the bytes pinned then are not the published file."""
    if not pin:
        return ()
    out = []
    for key in ("md5", "sha256", "size"):
        published, pinned = getattr(art, key), pin.get(key)
        if published is not None and pinned is not None and published != pinned:
            out.append(f"{key}: published {published}, pinned {pinned}")
    return tuple(out)


class Trust:
    """Trust decisions that also depend on the store (pins, remembered sidecars)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _pin(self, art: Artifact, pin: dict | None = None) -> dict:
        """The artifact's pin record ({} if none); a caller that already read it passes it."""
        return pin if pin is not None else (self.store.read_pin(art) or {})

    def pinned(self, art: Artifact, pin: dict | None = None) -> bool:
        return bool(self._pin(art, pin).get("md5"))

    def sidecar_md5(self, art: Artifact, pin: dict | None = None) -> str | None:
        """The md5 read from the upstream ``.md5sum`` and remembered for offline checks."""
        return self._pin(art, pin).get("sidecar_md5") if art.md5_url else None

    def _pin_agrees(self, art: Artifact, pin: dict) -> bool:
        """A pin counts only while it agrees with the upstream sidecar (when one is known):
        a pin taken from a mirror before upstream could be asked must not outvote it."""
        side = self.sidecar_md5(art, pin)
        return bool(pin.get("md5")) and (side is None or pin["md5"] == side)

    def needs_pin(self, art: Artifact, *, origin: bool = True) -> bool:
        """True when a verified copy should be pinned: no full checksum published and no pin
        that still holds.  Bytes from the origin replace a pin a mirror's bytes made."""
        if declared_strength(art) is Strength.FULL:
            return False
        pin = self._pin(art)
        if origin and pin.get("md5") and not pin_from_origin(art, pin):
            return True
        return not self._pin_agrees(art, pin)

    def expected(self, art: Artifact, *, origin: bool = False) -> Expected:
        """Published checksums, then the remembered upstream sidecar md5, then the pin.
        ``origin``: for bytes from the entry's own URL, which a pin taken from a mirror
        does not bind (the origin is the trust root; that pin is replaced)."""
        exp = declared(art)
        if declared_strength(art) is Strength.FULL:
            return exp
        pin = self._pin(art)
        side = self.sidecar_md5(art, pin)
        if side:
            exp = exp.merged(Expected(md5=side, sources={"md5": "sidecar"}))
        if origin and pin.get("md5") and not pin_from_origin(art, pin):
            return exp
        if self._pin_agrees(art, pin):
            exp = exp.merged(Expected(size=pin.get("size"), md5=pin["md5"],
                                      sha256=pin.get("sha256"),
                                      sources={"size": "pin", "md5": "pin", "sha256": "pin"}))
        return exp

    def strength(self, art: Artifact, pin: dict | None = None) -> Strength:
        """The declared strength, except: ``pinned`` once a first download was recorded for
        an artifact with nothing published, or whose upstream sidecar was never read."""
        declared_ = declared_strength(art)
        if declared_ is Strength.FULL:
            return declared_
        pin = self._pin(art, pin)
        unvouched = declared_ is not Strength.SIDECAR or not self.sidecar_md5(art, pin)
        if unvouched and self.pinned(art, pin) and not pin_from_origin(art, pin):
            return Strength.MIRROR
        if declared_ in (Strength.NONE, Strength.SIDECAR) and unvouched and \
                self.pinned(art, pin):
            return Strength.PINNED
        return declared_
