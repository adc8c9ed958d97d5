"""The Hugging Face cache as a place the bytes may already be: looked up, hashed, never linked.

``hf_hub_download`` / ``snapshot_download`` / ``hf download`` keep files in
``$HF_HUB_CACHE`` (else ``$HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``, else
``${XDG_CACHE_HOME:-~/.cache}/huggingface/hub``) as::

    <cache>/<type>s--<owner>--<name>/blobs/<sha256 of an LFS/Xet file>
    <cache>/<type>s--<owner>--<name>/refs/<branch or tag>          (its commit, one line)
    <cache>/<type>s--<owner>--<name>/snapshots/<commit>/<path>     (a symlink into blobs/)

A file found here is a candidate only: the blob's name is the Hub's word, and Xet
downloads have produced right-size, wrong-content files, so the caller hashes it
and admits it through the intake like any copy.  It is never hard-linked: the cache
is the Hub client's (``hf cache rm`` must still free the space, and a blob rewritten
in place must never reach the store), so it is copied or reflinked.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..download.hf import HubPath

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TRUE = ("1", "on", "yes", "true")
_REPO_FOLDER = re.compile(r"^(models|datasets|spaces)--.+--.+$")


def hub_cache() -> Path:
    """The Hub client's cache folder, read from the environment when called."""
    env = os.environ.get
    if env("HF_HUB_CACHE") or env("HUGGINGFACE_HUB_CACHE"):
        return Path(env("HF_HUB_CACHE") or env("HUGGINGFACE_HUB_CACHE") or "").expanduser()
    if env("HF_HOME"):
        return Path(env("HF_HOME") or "").expanduser() / "hub"
    return Path(env("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "huggingface" / "hub"


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE=1``: the Hub's client makes no request to the Hub; neither do we."""
    return (os.environ.get("HF_HUB_OFFLINE") or "").strip().lower() in _TRUE


def repo_folder(hp: HubPath) -> str:
    """``models--owner--name`` (``datasets--`` / ``spaces--``): the Hub client's naming."""
    kind = hp.repo_type or "models"
    return "--".join([kind, *hp.repo.split("/")])


@dataclass(frozen=True)
class Hit:
    """A file in the HF cache that may be the bytes of ``hp``."""

    path: Path           # the blob (symlinks resolved)
    repo: str            # [spaces/|datasets/]owner/name
    commit: str | None   # the snapshot it was found in (None: found by its blob name)
    file: str            # its path in the repo (or blobs/<sha256>)

    def describe(self) -> str:
        """``repo@commit/path``: the copy's provenance, for records and messages."""
        at = f"@{self.commit}" if self.commit else ""
        return f"the HF cache ({self.repo}{at}/{self.file})"


def find(hp: HubPath, sha256: str | None = None) -> list[Hit]:
    """Candidates for ``hp`` in the HF cache: its snapshot at the revision's commit, then
    any blob named by ``sha256`` (the expectation's, never the Hub's claim)."""
    root = hub_cache()
    folder = root / repo_folder(hp)
    label = f"{hp.repo_type}/{hp.repo}" if hp.repo_type else hp.repo
    hits: list[Hit] = []
    commit = _commit(folder, hp.revision)
    if commit is not None and hp.path:
        snap = folder / "snapshots" / commit / hp.path
        blob = blob_target(snap, root)
        if blob is not None:
            hits.append(Hit(blob, label, commit, hp.path))
    if sha256 and _SHA256.match(sha256):
        try:
            repos = sorted(os.listdir(root))
        except OSError:
            repos = []
        for name in [folder.name, *(r for r in repos if r != folder.name)]:
            blob = root / name / "blobs" / sha256
            if blob.is_file() and not blob.is_symlink() and all(h.path != blob for h in hits):
                hits.append(Hit(blob, _label(name), None, f"blobs/{sha256}"))
    return hits


def _label(folder: str) -> str:
    kind, _, rest = folder.partition("--")
    repo = rest.replace("--", "/", 1)
    return repo if kind == "models" else f"{kind}/{repo}"


def _commit(folder: Path, revision: str) -> str | None:
    """The commit a revision names in this cache: itself when it is one, else its ref."""
    if _COMMIT.match(revision):
        return revision
    if ".." in revision.split("/"):
        return None
    try:
        text = (folder / "refs" / revision).read_text().strip()
    except (OSError, ValueError):
        return None
    return text if _COMMIT.match(text) else None


def blob_target(link: Path, root: Path | None = None) -> Path | None:
    """Where a snapshot entry leads, when that is a regular file in some repo's ``blobs/``
    inside the HF cache; None for anything else (a link leaving the cache, a dangling
    one, a plain file planted in ``snapshots/``)."""
    root = (root or hub_cache())
    try:
        target = link.resolve(strict=True)
        base = root.resolve(strict=True)
        rel = target.relative_to(base)
    except (OSError, ValueError, RuntimeError):
        return None
    if len(rel.parts) != 3 or rel.parts[1] != "blobs" or not target.is_file():
        return None
    return target


def inside(path: Path) -> bool:
    """``path`` (symlinks resolved) lies in the HF cache -- the configured one, or any
    folder laid out as one (under ``<type>s--owner--name/``): bytes we do not own.  A
    false alarm only costs a copy instead of a link."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return True                    # cannot tell: treat it as the Hub client's
    if any(_REPO_FOLDER.match(up.name) for up in real.parents):
        return True                    # a blob, or a snapshot file stored without links
    try:
        real.relative_to(hub_cache().resolve())
        return True
    except (OSError, ValueError, RuntimeError):
        return False


def fill_hint(hp: HubPath) -> str:
    """The Hub client's command that would put ``hp`` in the HF cache."""
    kind = {"spaces": " --repo-type space", "datasets": " --repo-type dataset"}.get(
        hp.repo_type or "", "")
    rev = f" --revision {hp.revision}" if hp.revision != "main" else ""
    return f"`hf download {hp.repo} {hp.path}{kind}{rev}`"


def fill_advice(hub_urls: list[str]) -> str:
    """What would put a file where an offline fetch finds it (``--offline``'s hint)."""
    from ..download.hf import parse

    for url in hub_urls:
        return (f"{fill_hint(parse(url))} puts it in the HF cache, where this fetch reads "
                "it, or `densezoo adopt FILE` a copy you have")
    return "fetch it once with network access, or `densezoo adopt FILE` a copy you have"


def hub_offline_reason(url: str) -> str | None:
    """Why ``url`` is not asked under ``HF_HUB_OFFLINE=1``, which means what it means to
    the Hub's client: no request to the Hub -- through an ``hf://`` source or a plain URL
    on the Hub's endpoint host (the community zoo's origins are resolve URLs)."""
    if not hub_offline():
        return None
    from urllib.parse import urlsplit

    from ..download.hf import DEFAULT_ENDPOINT, endpoint
    from ..sources import scheme_of

    hub_hosts = {urlsplit(e).netloc.lower() for e in (endpoint(), DEFAULT_ENDPOINT)}
    if scheme_of(url) != "hf" and urlsplit(url).netloc.lower() not in hub_hosts:
        return None
    return "HF_HUB_OFFLINE is set: the Hub is not asked (its copy is used only from the HF cache)"


@dataclass(frozen=True)
class Copied:
    """A copy out of the HF cache that the intake admitted."""

    admitted: "Admitted"
    hit: Hit
    digests: "Digests"
    mode: str                        # reflink | copy


def admit_copy(art: "Artifact", urls: "list[str]", expected: "Expected", store: "Store",
               intake: "Intake", record: "Record", warnings: list[str]) -> Copied | None:
    """The first copy of one of ``urls`` (hf:// sources) already in the HF cache whose
    bytes the intake admits, published with no request to anyone; None when there is none.

    Each candidate is reflinked or copied into a partial of our own (never linked: the
    cache is the Hub client's), hashed there -- the bytes checked are the bytes published
    -- and admitted against the entry's expectation plus the blob's name, which is the
    Hub's sha256 claim: a blob whose content is not its name (a wrong Xet download) is
    refused, as a Hub answer whose bytes contradict its X-Linked-Etag is."""
    from ..disk import clone_or_copy, store_errors
    from ..download.hf import parse
    from ..errors import ChecksumMismatchError, UnsafeContentError, WrongContentError
    from ..hashing import ALGORITHMS, Expected, hash_file
    from .trust import voucher_for

    seen: set[Path] = set()
    for url in urls:
        try:
            hp = parse(url)
        except ValueError:
            continue
        for hit in find(hp, expected.sha256):
            if hit.path in seen:
                continue
            seen.add(hit.path)
            claim = hit.path.name if _SHA256.match(hit.path.name) else None
            if claim and expected.sha256 and claim != expected.sha256:
                continue                      # the Hub's name says another file: not hashed
            try:
                size = hit.path.stat().st_size
            except OSError:
                continue
            if expected.size is not None and size != expected.size:
                continue
            exp = expected.merged(Expected(sha256=claim, sources={"sha256": "the HF cache"}
                                           if claim else {}))
            partial = store.claim_partial(art, resume=False)
            try:
                with store_errors("copy from the HF cache into", partial.path.parent):
                    mode = clone_or_copy(hit.path, partial.path)
                digests = hash_file(partial.path, ALGORITHMS)
                # A copy voucher naming the HF cache: repo@commit/path (the blob's name
                # when no snapshot named it).
                voucher = voucher_for("copy", provenance_url(hit), digests,
                                      detail="the HF cache" + (f"; commit {hit.commit}"
                                                               if hit.commit else ""))
                admitted = intake.admit(
                    art, partial, digests, exp, url=provenance_url(hit),
                    validators={"etag": None, "last_modified": None,
                                "hub_commit": hit.commit},
                    origin=hit.describe(), record=record, voucher=voucher)
            except (ChecksumMismatchError, WrongContentError, UnsafeContentError) as e:
                warnings.append(f"{hit.describe()} is not {art.name}'s bytes ({e}); "
                                "not used")
                continue
            finally:
                partial.discard()
            return Copied(admitted, hit, digests, mode)
    return None


def provenance_url(hit: Hit) -> str:
    """``hf://repo@commit/path`` (the blob name when no snapshot named it)."""
    at = f"@{hit.commit}" if hit.commit else ""
    return f"hf://{hit.repo}{at}/{hit.file}"


if TYPE_CHECKING:
    from ..hashing import Digests, Expected
    from ..manifest import Artifact
    from .files import Store
    from .intake import Admitted, Intake
    from .record import Record
