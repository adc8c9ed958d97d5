"""What "the right bytes" means for an artifact, and how sure densezoo can be of them.

The expectation a file is checked against comes from, strongest first: the checksums
the manifest publishes, the md5 in the upstream ``.md5sum`` sidecar (read from the
origin, remembered in the record), and the first-use pin (the record's binding
voucher).  How strong the bytes are -- the one word every command prints -- is a pure
function of the entry and the record (``strength``).  A mirror is never a trust root:
its word is a ``copy`` voucher, which no later reader mistakes for the origin's.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

from ..hashing import Digests, Expected
from ..manifest import Artifact
from ..results import Checksum, Strength
from ..urls import redact
from .files import Store
from .record import DIGEST_KINDS, Record, Records, Voucher


def has_full(expected: Expected) -> bool:
    """A full checksum (md5 or sha256) is known: enough against an adversary.  An md5
    prefix is not: 6 hex digits are 24 bits, matched by brute force in ~20 s."""
    return bool(expected.md5 or expected.sha256)


def declared_checksum(art: Artifact) -> Checksum:
    """What the manifest alone promises (nothing any record says)."""
    if art.md5 or art.sha256:
        return Checksum.FULL
    if art.md5_url:
        return Checksum.SIDECAR
    if art.md5_prefix:
        return Checksum.PREFIX
    return Checksum.NONE


def declared(art: Artifact) -> Expected:
    """The size and checksums the manifest entry itself states."""
    return Expected(size=art.size, md5=art.md5, sha256=art.sha256, md5_prefix=art.md5_prefix,
                    sources={k: "manifest" for k in ("size", "md5", "sha256", "md5_prefix")
                             if getattr(art, k) is not None})


def authentic(url: str) -> bool:
    """A transport whose bytes nobody on the network can change: https, or a loopback
    address (the same machine).  Plain http elsewhere is a copy's word at best."""
    from ..urls import is_loopback

    scheme = urlsplit(url).scheme
    return scheme == "https" or (scheme == "http" and is_loopback(url))


def received(art: Artifact, url: str, digests: Digests, *, from_origin: bool,
             detail: str | None = None) -> Voucher:
    """The voucher for bytes just received from ``url``: the origin's only for the entry's
    own URL over an authentic transport."""
    from ..disk import utc_now

    kind = "origin" if from_origin and authentic(art.url) else "copy"
    return Voucher(kind, redact(url), digests.size, digests.md5, digests.sha256, utc_now(),
                   detail)


def voucher_for(kind: str, source: str, digests: Digests, detail: str | None = None) -> Voucher:
    """A voucher for bytes that entered now (``adopted`` from a path, ``copy`` from a
    bundle): who, which digests, when."""
    from ..disk import utc_now

    return Voucher(kind, source, digests.size, digests.md5, digests.sha256, utc_now(), detail)


def pin_conflicts(art: Artifact, record: Record) -> tuple[str, ...]:
    """Where the first-use pin disagrees with what the manifest now publishes, each as
    "md5: published X, pinned Y".  Published wins (``expected`` ignores the pin); the
    disagreement is still news: the bytes pinned then are not the published file."""
    pin = record.pin
    if pin is None:
        return ()
    out = []
    for key in ("md5", "sha256", "size"):
        published, pinned = getattr(art, key), getattr(pin, key)
        if published is not None and pinned is not None and published != pinned:
            out.append(f"{key}: published {published}, pinned {pinned}")
    return tuple(out)


class Trust:
    """Trust decisions over the store's records (one ``Record`` read per artifact)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.records = Records(store.layout)

    def record_of(self, art: Artifact) -> Record:
        """This user's trust record of ``art`` (one read; pass it down)."""
        return self.records.load(art)

    def _rec(self, art: Artifact, record: Record | None) -> Record:
        return record if record is not None else self.records.load(art)

    @staticmethod
    def _pin_holds(art: Artifact, record: Record) -> Voucher | None:
        """The pin, while it agrees with the upstream sidecar (when one is known): a pin
        taken from a mirror before upstream could be asked must not outvote it."""
        pin = record.pin
        side = record.sidecar_md5 if art.md5_url else None
        return pin if pin is not None and (side is None or pin.md5 == side) else None

    def needs_pin(self, art: Artifact, record: Record | None = None, *,
                  origin: bool = True) -> bool:
        """True when received bytes should be pinned: no full checksum published and no
        pin that still holds.  The origin's bytes replace a pin a copy made."""
        if declared_checksum(art) is Checksum.FULL:
            return False
        pin = self._pin_holds(art, self._rec(art, record))
        return pin is None or (origin and pin.kind != "origin")

    def expected(self, art: Artifact, record: Record | None = None, *,
                 origin: bool = False) -> Expected:
        """Published checksums, then the remembered upstream sidecar md5, then the pin.
        ``origin``: for bytes from the entry's own URL, which a pin taken from a copy
        does not bind (the origin is the trust root; that pin is replaced)."""
        exp = declared(art)
        if declared_checksum(art) is Checksum.FULL:
            return exp
        rec = self._rec(art, record)
        side = rec.sidecar_md5 if art.md5_url else None
        if side:
            exp = exp.merged(Expected(md5=side, sources={"md5": "sidecar"}))
        pin = self._pin_holds(art, rec)
        if pin is None or (origin and pin.kind != "origin"):
            return exp
        return exp.merged(Expected(size=pin.size, md5=pin.md5, sha256=pin.sha256,
                                   sources={"size": "pin", "md5": "pin", "sha256": "pin"}))

    def strength(self, art: Artifact, record: Record | None, digests: Digests | None) -> Strength:
        """The word for bytes with ``digests`` (already checked against ``expected``):
        what the record's vouchers that agree with them add up to."""
        if digests is None:
            return Strength.NONE
        rec = self._rec(art, record)
        d = _completed(digests, rec)
        full = declared(art)
        side = rec.sidecar_md5 if art.md5_url else None
        if side:
            full = full.merged(Expected(md5=side))
        if has_full(full) and full.mismatch(d) is None and (
                (full.md5 and d.md5) or (full.sha256 and d.sha256)):
            return Strength.VERIFIED
        agreeing = [v for v in rec.vouchers
                    if v.kind in (*DIGEST_KINDS, "hub-claim") and v.agrees(d)]
        kinds = {v.kind for v in agreeing}
        # Cross-checked: the origin's bytes, and another party that agrees with them.  Two
        # copies never cross-check each other (one hostile mirror under two host names,
        # a Hub re-upload, a bundle of a mirror's bytes are one word said twice).
        if "origin" in kinds and len({v.party for v in agreeing}) >= 2:
            return Strength.CROSS_CHECKED
        if "origin" in kinds:
            return Strength.PREFIX if art.md5_prefix else Strength.ORIGIN_PINNED
        if "copy" in kinds:
            return Strength.COPY_PINNED
        if "adopted" in kinds:
            return Strength.ADOPTED
        return Strength.NONE

    def strength_in_store(self, art: Artifact, record: Record,
                          digests: Digests) -> tuple[Strength, Record, Voucher | None]:
        """``strength`` of a file already in the store; when nothing of this user's vouches
        for it, who put it there (``found_in_store``) is counted -- returned as the third
        value, for a caller that records it -- with the record it makes."""
        strength = self.strength(art, record, digests)
        if strength is not Strength.NONE:
            return strength, record, None
        found = self.found_in_store(art, digests)
        record = replace(record, vouchers=(*record.vouchers, found))
        return self.strength(art, record, digests), record, found

    def disagreeing_claims(self, record: Record, digests: Digests) -> tuple[Voucher, ...]:
        """Hub claims that name other bytes than these (one loud warning each)."""
        d = _completed(digests, record)
        return tuple(v for v in record.of("hub-claim")
                     if v.sha256 and d.sha256 and v.sha256 != d.sha256)

    def found_in_store(self, art: Artifact, digests: Digests) -> Voucher:
        """Who put a cached file that this user's record says nothing of: the file's own
        metadata, when this user wrote it (its URL: the origin or a copy); otherwise
        another user or process, which is a copy's word at most."""
        from ..disk import utc_now

        meta = self.store.read_meta(art) if self.store.private(art) else None
        url = meta.get("url") if meta else None
        if isinstance(url, str) and url:
            kind = "origin" if url == redact(art.url) and authentic(art.url) else "copy"
            return Voucher(kind, url, digests.size, digests.md5, digests.sha256, utc_now(),
                           "recorded in the file's metadata")
        owner = _owner(self.store.path_for(art))
        return Voucher("copy", f"the store ({owner})", digests.size, digests.md5,
                       digests.sha256, utc_now(), "found in the store; this user's record "
                       "says nothing of it")


def weak_line(art: Artifact, strength: Strength, record: Record) -> str:
    """The one line said when weak bytes enter the store (details: ``densezoo info``)."""
    what = (f"a {len(art.md5_prefix)}-hex md5 prefix at most" if art.md5_prefix
            else "no published checksum")
    pin = record.pin
    if strength is Strength.ORIGIN_PINNED:
        return (f"{art.name}: origin-pinned -- nothing is published for it; pinned "
                f"md5 {pin.md5 if pin else '?'} from its own URL")
    if strength is Strength.COPY_PINNED:
        src = pin.source if pin else "a copy"
        return f"{art.name}: copy-pinned -- only {src} vouched for it ({what})"
    if strength is Strength.ADOPTED:
        src = pin.source if pin else "a file on disk"
        return f"{art.name}: adopted from {src} ({what})"
    return f"{art.name}: {strength} -- nothing vouches for these bytes"


def _completed(digests: Digests, record: Record) -> Digests:
    """The digests, with the pin's other digest when the pin agrees (the same bytes)."""
    pin = record.pin
    if pin is None or not pin.agrees(digests):
        return digests
    return Digests(digests.size, digests.md5 or pin.md5, digests.sha256 or pin.sha256)


def _owner(path) -> str:
    import os

    try:
        uid = os.stat(path).st_uid
    except OSError:
        return "unknown owner"
    try:
        import pwd

        return f"written by {pwd.getpwuid(uid).pw_name}"
    except (ImportError, KeyError):
        return f"written by uid {uid}"
