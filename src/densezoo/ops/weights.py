"""``densezoo check`` and ``densezoo identify``: which weights are these bytes?

A file name proves nothing (the R-50 backbone saved as ``model_final_162be9.pkl``, a
31-byte placeholder, an LFS pointer), and a 24-bit md5 prefix little more.  ``check``
compares a checkpoint's tensors with the model a name or a config builds
(``content.structure``), in detectron2's words; ``identify`` says what any file is:
by full digest, then md5 prefix, then structure -- and names placeholders, LFS
pointers, HTML pages and all-zero arrays as what they are.  Both only read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..content.structure import (Expected, StructureCheck, StructureStatus, compare,
                                 expected_for, matching_models, models_with_config)
from ..errors import AmbiguousArtifactError, UnknownArtifactError, UsageError
from ..manifest import Artifact

if TYPE_CHECKING:
    from ..core import Core

PLACEHOLDER_MAX = 1024         # a text file this small in place of weights is a note
_LFS_OID = re.compile(rb"oid sha256:([0-9a-f]{64})")
_LFS_SIZE = re.compile(rb"size (\d+)")


@dataclass(frozen=True)
class StructureReport:
    """``check``'s answer for one checkpoint."""

    target: str                    # the NAME or PATH asked about
    path: str                      # the file read
    against: str                   # how the expected model was chosen
    config: str | None
    check: StructureCheck

    @property
    def ok(self) -> bool:
        return self.check.ok

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.target, "path": self.path, "against": self.against,
                "config": self.config, **self.check.to_dict()}


def _inventory(path: Path):
    from ..content.tensors import inventory

    return inventory(path)


def _artifact_or_none(core: "Core", name: str) -> Artifact | None:
    try:
        return core.artifact(name)
    except (UnknownArtifactError, AmbiguousArtifactError):
        return None


def config_structure(core: "Core", config: Path) -> tuple[Expected | None, str]:
    """The structure a config builds: by its content -- its resolved MODEL keys, wherever
    the file sits -- else by the model a manifest says it trained (folder and name; said
    so, since then its MODEL keys are not a shipped config's)."""
    from ..configs import load_config

    same: dict[str, Expected] = {}
    for e in models_with_config(load_config(config), same_model=True):
        same.setdefault(e.digest, e)        # sorted by name: a deprecated "-<id>" twin last
    if len(same) == 1:
        found = next(iter(same.values()))
        return found, f"the model {config.name} builds (its MODEL keys are {found.config}'s)"
    model = core.catalog.trained_with(config)
    if model is not None and (found := expected_for(model.name)) is not None:
        return found, (f"the model {model.name} (by {config.name}'s folder and name; its "
                       "MODEL keys differ from the shipped config's)")
    return None, f"densezoo knows no detectron2 DensePose config with {config.name}'s MODEL keys"


def config_weights(core: "Core", config: Path) -> str:
    """What MODEL.WEIGHTS of ``config`` will load: a local file, or a manifest entry."""
    from ..configs import load_config

    weights = (load_config(config).get("MODEL") or {}).get("WEIGHTS")
    if not isinstance(weights, str) or not weights:
        raise UsageError(f"{config.name} sets no MODEL.WEIGHTS",
                         hint="name the weights: densezoo check NAME|PATH --config CONFIG")
    for local in (Path(weights).expanduser(), config.parent / weights):
        if local.is_file():
            return str(local)
    return weights


def check(core: "Core", target: str | None, *, as_name: str | None = None,
          config: str | os.PathLike[str] | None = None) -> StructureReport:
    """Does the checkpoint ``target`` (an artifact NAME, cached, or any PATH) fit the model
    named by ``as_name``, built by ``config``, or -- by default -- the one it is named as?
    With ``config`` and no target: the weights the config's MODEL.WEIGHTS will load."""
    cfg = Path(config) if config is not None else None
    if target is None:
        if cfg is None:
            raise UsageError("name a checkpoint (NAME or PATH), or a config with --config")
        target = config_weights(core, cfg)
    art = None
    if os.path.isfile(target):
        path = Path(target)
    else:
        art = core.artifact(target)
        path = core.path(art)
    not_weights = _not_weights(path)
    if not_weights is not None:
        unknown = StructureCheck(StructureStatus.UNKNOWN, None, 0, 0, reason=not_weights[1])
        return StructureReport(target, str(path), "its contents", str(cfg) if cfg else None,
                               unknown)
    inv = _inventory(path)
    if cfg is not None:
        expected, against = config_structure(core, cfg)
    elif as_name is not None:
        named = core.artifact(as_name)
        expected, against = expected_for(named.name), f"--as {named.name}"
    else:
        named = art or _artifact_or_none(core, path.name)
        expected = expected_for(named.name) if named else None
        against = f"its name ({named.name})" if named else "its contents"
        if named is None:
            found = matching_models(inv)
            if found:
                expected = found[0]
    if expected is None:
        why = against if cfg is not None else (
            f"densezoo knows no structure for {named.name} (only detectron2 DensePose models "
            "have one)" if named is not None else
            "its name is no artifact's and its tensors match no known model; name the model "
            "with --as NAME")
        unknown = StructureCheck(StructureStatus.UNKNOWN, None, len(inv.tensors), 0, reason=why)
        return StructureReport(target, str(path), against, str(cfg) if cfg else None, unknown)
    return StructureReport(target, str(path), against, str(cfg) if cfg else None,
                           compare(inv, expected))


@dataclass(frozen=True)
class Identification:
    """``identify``'s answer for one file: what its bytes are, and by what evidence."""

    path: str
    size: int
    what: str                      # artifact | placeholder | lfs-pointer | html-page |
                                   # all-zero | unknown
    names: tuple[str, ...] = ()    # the artifact(s) the bytes are (or point to)
    by: str | None = None          # sha256 | md5 | md5-prefix+structure | md5-prefix |
                                   # structure | lfs-oid
    detail: str = ""
    structure: StructureCheck | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "what": self.what,
                "names": list(self.names), "by": self.by, "detail": self.detail,
                "structure": str(self.structure.status) if self.structure else None}


def _files(paths: list[str]) -> Iterator[Path]:
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted(filenames):
                    f = Path(dirpath) / name
                    if f.is_file():
                        yield f
        elif path.is_file():
            yield path
        else:
            raise UsageError(f"{p}: no such file or folder")


def identify(core: "Core", paths: list[str]) -> list[Identification]:
    """What each file (folders are walked) is.  Reads and hashes; changes nothing."""
    if not paths:
        raise UsageError("name files or folders to identify")
    digests_index = _DigestIndex(core)
    return [_identify(core, digests_index, f) for f in _files(paths)]


class _DigestIndex:
    """Every loaded entry by the digests it is known by: published or pinned full ones,
    and detectron2's md5 prefixes (which name a candidate, never prove one)."""

    def __init__(self, core: "Core") -> None:
        self.full: dict[str, list[Artifact]] = {}
        self.prefixes: list[tuple[str, Artifact]] = []
        for a in core.catalog.artifacts:
            exp = core.trust.expected(a)
            for value in (exp.md5, exp.sha256):
                if value:
                    self.full.setdefault(value.lower(), []).append(a)
            if a.md5_prefix:
                self.prefixes.append((a.md5_prefix.lower(), a))

    def by_full(self, *values: str | None) -> tuple[list[Artifact], str | None]:
        for algo, v in zip(("md5", "sha256"), values):
            if v and v.lower() in self.full:
                return self.full[v.lower()], algo
        return [], None

    def by_prefix(self, md5: str) -> list[Artifact]:
        return [a for prefix, a in self.prefixes if md5.lower().startswith(prefix)]


def _names(arts: list[Artifact]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.name for a in arts))


def _identify(core: "Core", index: _DigestIndex, path: Path) -> Identification:
    from ..hashing import ALGORITHMS, hash_file

    size = path.stat().st_size
    digests = hash_file(path, ALGORITHMS)
    arts, algo = index.by_full(digests.md5, digests.sha256)
    if arts:
        return Identification(str(path), size, "artifact", _names(arts), algo,
                              f"its {algo} is the one {arts[0].name} is known by")
    not_weights = _not_weights(path)
    if not_weights is not None:
        what, detail, oid = not_weights
        pointed, _ = index.by_full(None, oid) if oid else ([], None)
        return Identification(str(path), size, what, _names(pointed),
                              "lfs-oid" if pointed else None, detail)
    inv = _inventory(path) if _pickled(path) else None
    if inv is not None and inv.tensors and all(t.all_zero for t in inv.tensors):
        return Identification(str(path), size, "all-zero", (), None,
                              f"{len(inv.tensors)} arrays, every value zero: a placeholder")
    prefixed = index.by_prefix(digests.md5)
    for a in prefixed:
        expected = expected_for(a.name)
        if expected is None or inv is None:
            continue
        result = compare(inv, expected)
        if result.ok:
            # The evidence intake records as a structure voucher (identify only reads).
            return Identification(str(path), size, "artifact", (a.name,),
                                  "md5-prefix+structure", f"md5 starts with {a.md5_prefix} "
                                  f"and {result.summary()}", result)
    if prefixed:
        a = prefixed[0]
        return Identification(str(path), size, "artifact", _names(prefixed), "md5-prefix",
                              f"md5 starts with {a.md5_prefix} (24 bits: a hint, not proof"
                              + ("; its tensors are not that model's)" if
                                 expected_for(a.name) and inv is not None else ")"))
    if inv is not None and inv.layout != "unknown":
        found = matching_models(inv)
        if found:
            check_ = compare(inv, found[0])
            return Identification(
                str(path), size, "unknown", tuple(e.model for e in found), "structure",
                f"not a published file, but {check_.summary()}"
                + (f" (and {len(found) - 1} more with the same structure)"
                   if len(found) > 1 else ""), check_)
        return Identification(str(path), size, "unknown", (), None,
                              f"a {inv.layout} checkpoint of {len(inv.tensors)} tensors "
                              "matching no known model")
    return Identification(str(path), size, "unknown", (), None,
                          "its digests and contents match nothing densezoo knows")


def _not_weights(path: Path) -> tuple[str, str, str | None] | None:
    """(what, why, the sha256 an LFS pointer names) for files that are certainly not
    weights: a git-lfs pointer, an HTML/XML error page, a small text placeholder."""
    from ..content.sniff import sniff_wrong_content

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(PLACEHOLDER_MAX)
    wrong = sniff_wrong_content(head, path.name)
    if wrong and b"git-lfs" in head[:64]:
        oid, n = _LFS_OID.search(head), _LFS_SIZE.search(head)
        return ("lfs-pointer", f"a git-lfs pointer file ({size} bytes) to "
                f"{int(n.group(1)) if n else '?'} bytes of sha256 "
                f"{oid.group(1).decode()[:12] if oid else '?'}..., not the file",
                oid.group(1).decode() if oid else None)
    if wrong:
        return "html-page", wrong.replace("the server sent", "it is"), None
    if size < PLACEHOLDER_MAX and _is_text(head):
        text = head.decode("utf-8", "replace").strip().splitlines()[0][:80] \
            if head.strip() else ""
        return "placeholder", f"a {size}-byte text file ({text!r}), not weights", None
    return None


def _pickled(path: Path) -> bool:
    """Named like a pickle, or starting like one (protocol 2+: a Hub blob has no suffix)."""
    if path.suffix.lower() in (".pkl", ".pickle"):
        return True
    with open(path, "rb") as f:
        return f.read(2) in {b"\x80" + bytes([p]) for p in range(2, 6)}


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= 32 or c in b"\t\r\n" for c in head)
