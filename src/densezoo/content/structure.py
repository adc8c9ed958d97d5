"""Does this checkpoint fit this model?  The tensors a file holds against the model built.

For 49 of the 50 detectron2 DensePose models the only published evidence is a 24-bit
md5 prefix; the mistakes users make are about *which* weights (v1 weights in a
detectron2 config, the R-50 backbone under a model's name, detectron2 #818).  The
expected structure of each model -- the sorted ``(name, shape, dtype)`` list of
``build_model(cfg).state_dict()`` -- ships as package data (``structures.json.gz``,
written by ``tools/gen_structures.py`` from the real detectron2), and a checkpoint's
tensor inventory (``content.tensors``, read without unpickling) is compared with it in
detectron2's own terms: what ``DetectionCheckpointer`` would call *missing*,
*unexpected* or an *incompatible shape*.

Only detectron2 DensePose models have a structure; v1 (Caffe2) models, RPN files and
anything else are "unknown" -- never a guess.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

from ..errors import Label

DATA = "structures.json.gz"
FIRST = 5          # differences shown; counts are always complete
Row = tuple[str, tuple[int, ...], str]


class StructureStatus(Label):
    MATCH = "match"            # every tensor the model has, with its shape; nothing else
    MISMATCH = "mismatch"      # missing, unexpected or incompatible tensors (or another layout)
    UNKNOWN = "unknown"        # no expected structure, or the file's tensors cannot be read


@dataclass(frozen=True)
class Expected:
    """The structure one model entry's config builds."""

    model: str                 # manifest entry name
    config: str                # config path in DensePose's tree (configs/...yaml)
    digest: str                # sha256 of the canonical list (tools/gen_structures.digest)
    tensors: tuple[Row, ...]   # sorted by name: what state_dict() holds
    not_saved: frozenset[str]  # non-persistent buffers: older detectron2 saved them


@dataclass(frozen=True)
class Difference:
    kind: str                  # "missing" | "unexpected" | "shape"
    name: str
    checkpoint: tuple[int, ...] | None = None
    model: tuple[int, ...] | None = None

    def __str__(self) -> str:
        if self.kind == "missing":
            return f"missing in the checkpoint: {self.name}"
        if self.kind == "unexpected":
            return f"unexpected (not in the model): {self.name}"
        return (f"shape of {self.name} in the checkpoint is {list(self.checkpoint or ())}, "
                f"in the model {list(self.model or ())}")


@dataclass(frozen=True)
class StructureCheck:
    """The structure check's answer, a small frozen record: what a prefix-plus-structure
    match vouches for (the trust record's *structure* voucher) and what ``check`` shows."""

    status: StructureStatus
    model: str | None          # the expected model compared with (None: nothing to compare)
    tensors: int               # tensors in the checkpoint
    expected: int              # tensors in the model (0: unknown)
    missing: int = 0
    unexpected: int = 0
    shape: int = 0
    differences: tuple[Difference, ...] = ()      # the first FIRST of them
    reason: str = ""           # why mismatch/unknown, in one line

    @property
    def ok(self) -> bool:
        return self.status is StructureStatus.MATCH

    def summary(self, *, first: bool = True) -> str:
        """One line; ``first``: with the first difference (a list of them may follow)."""
        if self.status is StructureStatus.MATCH:
            return f"structure matches {self.model} ({self.tensors} tensors)"
        if self.status is StructureStatus.UNKNOWN:
            return f"structure unknown: {self.reason}"
        shown = f"; first: {self.differences[0]}" if first and self.differences else ""
        return f"structure does not match {self.model}: {self.reason}{shown}"

    def to_dict(self) -> dict[str, Any]:
        return {"structure": str(self.status), "model": self.model, "tensors": self.tensors,
                "expected_tensors": self.expected, "missing": self.missing,
                "unexpected": self.unexpected, "shape_mismatch": self.shape,
                "differences": [str(d) for d in self.differences], "reason": self.reason}


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    blob = resources.files(__package__).joinpath(DATA).read_bytes()
    return json.loads(gzip.decompress(blob))


def _expected(model: str, entry: dict[str, Any]) -> Expected:
    s = _data()["structures"][entry["digest"]]
    return Expected(model, entry["config"], entry["digest"],
                    tuple((n, tuple(shape), dt) for n, shape, dt in s["tensors"]),
                    frozenset(n for n, _, _ in s["not_saved"]))


def expected_for(model: str) -> Expected | None:
    """The structure of manifest entry ``model`` (None: no structure is known for it)."""
    entry = _data()["models"].get(model)
    return _expected(model, entry) if entry else None


def expected_for_config(config: str) -> Expected | None:
    """The structure a DensePose config builds, by its path in DensePose's tree
    (``configs/cse/densepose_rcnn_R_50_FPN_s1x.yaml``; a trailing match is enough)."""
    config = config.replace("\\", "/")
    for model, entry in sorted(_data()["models"].items()):
        if config == entry["config"] or config.endswith("/" + entry["config"]) \
                or entry["config"].endswith("/" + config.lstrip("/")):
            return _expected(model, entry)
    return None


def all_expected() -> list[Expected]:
    return [_expected(m, e) for m, e in sorted(_data()["models"].items())]


def fingerprint(cfg: dict[str, Any]) -> tuple[str, str]:
    """What a resolved config (``configs.load_config``: every ``_BASE_`` merged) *is*,
    wherever its file sits: sha256 of all its keys but MODEL.WEIGHTS (which model it
    trains), and of its MODEL keys but WEIGHTS (which structure it builds).  A config
    copied out of its folder keeps both."""
    import hashlib

    def digest(d: Any) -> str:
        return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":"),
                                         default=str).encode()).hexdigest()

    cfg = {k: v for k, v in cfg.items() if k != "_BASE_"}
    model = {k: v for k, v in (cfg.get("MODEL") or {}).items() if k != "WEIGHTS"} \
        if isinstance(cfg.get("MODEL"), dict) else {}
    return digest({**cfg, "MODEL": model}), digest(model)


def models_with_config(cfg: dict[str, Any], *, same_model: bool = False) -> list[Expected]:
    """Shipped models whose config resolves to ``cfg``'s content: the same whole config
    (which model it trained), or with ``same_model`` only the same MODEL keys (which
    structure it builds)."""
    whole, model = fingerprint(cfg)
    return [_expected(m, e) for m, e in sorted(_data()["models"].items())
            if (e.get("model_keys") == model if same_model else e.get("resolved") == whole)]


def compare(inventory: Any, expected: Expected) -> StructureCheck:
    """Compare a tensor inventory (``content.tensors.Inventory``) with ``expected`` the way
    ``DetectionCheckpointer`` would load it: by name (a DDP ``module.`` prefix stripped, as
    fvcore does), then shape.  A non-persistent buffer in the file is not unexpected."""
    n = len(expected.tensors)
    if inventory.layout == "unknown":
        return StructureCheck(StructureStatus.UNKNOWN, expected.model, 0, n,
                              reason=f"its tensors cannot be read ({inventory.reason})")
    got = {t.name: tuple(t.shape) for t in inventory.tensors}
    if inventory.layout != "detectron2":
        return StructureCheck(
            StructureStatus.MISMATCH, expected.model, len(got), n, missing=n,
            reason=(f"a {inventory.layout} checkpoint ({len(got)} tensors named the Caffe2 "
                    f"way), not a detectron2 one: detectron2 would rename them by heuristics "
                    f"and leave this model's {n} tensors unmatched"))
    if got and all(k.startswith("module.") for k in got):
        got = {k[len("module."):]: v for k, v in got.items()}
    want = {name: shape for name, shape, _ in expected.tensors}
    missing = [Difference("missing", k) for k in sorted(want) if k not in got]
    shape = [Difference("shape", k, got[k], want[k]) for k in sorted(want)
             if k in got and got[k] != want[k]]
    unexpected = [Difference("unexpected", k) for k in sorted(got)
                  if k not in want and k not in expected.not_saved]
    if not (missing or shape):
        # Keys the model does not have are what detectron2 skips with a log line, and
        # they change nothing the model computes: a file that also carries them (an
        # older head's buffers, an optimizer's leftovers) still fits.  They are counted.
        return StructureCheck(StructureStatus.MATCH, expected.model, len(got), n,
                              unexpected=len(unexpected),
                              reason=(f"{len(unexpected)} extra tensor(s) the model does not "
                                      "have, which detectron2 skips" if unexpected else ""))
    diffs = tuple((shape + missing + unexpected)[:FIRST])
    counts = [f"{len(x)} {w}" for x, w in ((missing, "missing"), (unexpected, "unexpected"),
                                           (shape, "of another shape")) if x]
    return StructureCheck(StructureStatus.MISMATCH, expected.model, len(got), n,
                          len(missing), len(unexpected), len(shape), diffs,
                          reason=f"{', '.join(counts)} of {n} tensors")


def check_file(path: Any, expected: Expected) -> StructureCheck:
    """Read the file's tensor inventory (without unpickling) and compare."""
    from .tensors import inventory

    return compare(inventory(path), expected)


def matching_models(inventory: Any, candidates: Iterable[Expected] | None = None
                    ) -> list[Expected]:
    """Every model whose structure this inventory matches exactly (several configs build
    the same structure: DL_WC1M and the evolution models share one)."""
    return [e for e in (all_expected() if candidates is None else candidates)
            if compare(inventory, e).ok]

