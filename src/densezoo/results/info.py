"""What ``list`` and ``info`` show of an entry: the manifest's facts plus the store's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..manifest import Artifact
from ..urls import redact
from . import Checksum, Strength


def artifact_dict(a: Artifact) -> dict[str, Any]:
    """An artifact as the manifest declares it, with credentials redacted from its URLs."""
    return {
        "name": a.name, "zoo": a.zoo, "kind": a.kind, "file_name": a.file_name,
        "url": redact(a.url), "mirrors": [redact(m) for m in a.mirrors],
        "legacy_urls": [redact(u) for u in a.legacy_urls], "md5": a.md5,
        "md5_prefix": a.md5_prefix, "sha256": a.sha256,
        "md5_url": redact(a.md5_url) if a.md5_url else None, "size": a.size,
        "description": a.description, "config": a.config, "metrics": dict(a.metrics),
        "license": a.license, "requires": list(a.requires), "aliases": list(a.aliases),
        "deprecated": a.deprecated, "note": a.note, "advisory": a.advisory,
        "derived_from": a.derived_from, "manifest": a.source,
    }


# Which DensePose number each zoo's tables report, shown beside the AP column.
AP_METRIC = {"densepose-v1": "AP (GPS)", "detectron2": "AP (GPSm)"}


def percent(values: dict[str, Any]) -> dict[str, float]:
    """A task's accuracy numbers in percent: v1 published fractions (0.4748), detectron2's
    tables percent (65.3); a table whose every value is at most 1 is a fraction table."""
    nums = {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}
    scale = 100.0 if nums and all(v <= 1.0 for v in nums.values()) else 1.0
    return {k: round(v * scale, 2) for k, v in nums.items()}


def headline_ap(art: Artifact) -> tuple[float | None, str | None]:
    """The one DensePose AP a browsing user compares, in percent, and which metric it is."""
    dp = art.metrics.get("densepose")
    if not isinstance(dp, dict):
        return None, None
    scaled = percent(dp)
    for key, label in (("GPSm", "AP (GPSm)"), ("AP", "AP (GPS)"), ("GPS", "AP (GPS)")):
        if key in scaled:
            return scaled[key], label
    return None, None


def inference_time(art: Artifact) -> float | None:
    speed = art.metrics.get("speed")
    value = speed.get("inference_s_per_im") if isinstance(speed, dict) else None
    return float(value) if value is not None else None


@dataclass(frozen=True)
class ArtifactInfo:
    """An artifact as the manifest declares it, plus what the local store knows of it:
    the published checksum, the strength of the cached bytes (None when not cached),
    and this user's trust record (who vouched for which digest)."""

    artifact: Artifact
    strength: Strength | None
    path: Path | None              # the cached file, if present
    record: Any = None             # store.record.Record: this user's vouchers
    requires: tuple[str, ...] = ()  # full dependency closure, dependencies first
    pin_conflicts: tuple[str, ...] = ()   # the pin disagrees with a published value
    mirrors: tuple[str, ...] = ()   # configured mirror prefixes (--mirror, DENSEZOO_MIRROR)
    checksum: Checksum = Checksum.NONE    # what the manifest publishes
    shadows: str | None = None     # the shipped entry this one overrides, if any
    vouchers: tuple[dict[str, Any], ...] = ()   # who vouched: the manifest, then the record

    @property
    def pin(self) -> dict[str, Any] | None:
        """The voucher that binds the bytes (first-use pin), as a plain record."""
        pin = self.record.pin if self.record is not None else None
        if pin is None:
            return None
        d = pin.to_dict()
        if self.record.sidecar_md5:
            d["sidecar_md5"] = self.record.sidecar_md5
        return d

    @property
    def name(self) -> str:
        return self.artifact.name

    def sources(self) -> list[dict[str, str]]:
        """Every place the bytes may come from, in the order a fetch tries them, and what
        verifies bytes from each: the origin is the trust root; any other copy (a
        configured mirror, a manifest mirror, a Hub copy) is transport, verified only
        by a full published checksum -- with an md5 prefix alone it is a mirror copy."""
        from ..urls import url_key

        a = self.artifact
        full = [k for k in ("sha256", "md5") if getattr(a, k)]
        size = " and size" if a.size is not None else ""
        if full:
            # A derived file (a conversion) has no upstream checksum: its host's is the one.
            by = " by its host (the Hub), not upstream" if a.derived_from else ""
            origin_check = copy_check = f"published {' and '.join(full)}{size}{by}"
        elif a.md5_url:
            origin_check = "the md5 published next to it (.md5sum), then a first-use pin"
            copy_check = "the upstream .md5sum when upstream answers, else a mirror copy"
        elif a.md5_prefix:
            origin_check = f"md5 prefix {a.md5_prefix} (24 bits), then a first-use pin"
            copy_check = (f"md5 prefix {a.md5_prefix} only: a mirror copy (warned; --strict "
                          "refuses)")
        else:
            origin_check = "nothing published: a first-use pin"
            copy_check = "nothing published: a mirror copy (warned; --strict refuses)"
        key = "/".join(url_key(a.url))
        out = [{"role": "mirror", "url": redact(m.rstrip("/") + "/" + key),
                "verified_by": copy_check} for m in self.mirrors]
        out.append({"role": "origin", "url": redact(a.url), "verified_by": origin_check})
        for m in a.mirrors:
            hub = m.startswith("hf://")
            out.append({"role": "hub copy" if hub else "mirror", "url": redact(m),
                        "verified_by": copy_check + ("; the Hub's own sha256 and size are "
                                                     "checked before and after; a copy in "
                                                     "the HF cache is used first" if hub
                                                     else "")})
        out += [{"role": "legacy", "url": redact(u), "verified_by": "not tried (historical)"}
                for u in a.legacy_urls]
        return out

    def to_dict(self) -> dict[str, Any]:
        d = artifact_dict(self.artifact)
        pin = self.pin
        ap, metric = headline_ap(self.artifact)
        d.update({"strength": self.strength, "checksum": self.checksum,
                  "vouchers": list(self.vouchers), "shadows": self.shadows,
                  "cached": self.path is not None,
                  "path": str(self.path) if self.path else None, "pin": pin,
                  "requires_closure": list(self.requires), "ap": ap, "ap_metric": metric,
                  "pin_conflicts": list(self.pin_conflicts), "sources": self.sources(),
                  "inference_s_per_im": inference_time(self.artifact)})
        return d


# Kinds ``list`` leaves out unless asked: entries that only carry another entry's metrics.
HIDDEN_KINDS = ("metrics",)


class Listing(list):
    """``list``'s artifacts (a plain list of ``ArtifactInfo``), and how many entries of
    ``HIDDEN_KINDS`` were left out (``hidden``), for a footer that says so."""

    hidden: int = 0
