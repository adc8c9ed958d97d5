"""``densezoo manifest add``: a manifest entry from bytes, not from hand-copied hashes.

What pooch's ``make_registry`` does for a folder, for one entry at a time and with
the entry's URL: md5, sha256 and size are computed from the bytes (a URL is downloaded
through the verified path first, so it lands in the store as a first-use pin), a
pickle must pass the same scan as any download, and the entry is appended to the
manifest without touching the rest of its text -- or printed, for review.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PolicyError, StoreError, UsageError
from ..hashing import Digests, hash_file
from ..manifest import check_name, check_url, parse_entry, parse_manifest

if TYPE_CHECKING:
    from ..core import Core


@dataclass(frozen=True)
class AddedEntry:
    name: str
    url: str
    file_name: str
    size: int
    md5: str | None           # None: the bytes came from a copy, not the URL itself
    sha256: str | None
    manifest: str | None      # where it was appended (None: printed only)
    pinned_from: str | None = None    # the copy that served the bytes (digests not written)

    def entry(self) -> dict[str, Any]:
        """The manifest entry, as it is written: md5/sha256 mean "published", so they
        are written only from the origin's own bytes."""
        digests = {"md5": self.md5, "sha256": self.sha256} if self.md5 else {"md5": None}
        return {"name": self.name, "url": self.url, **digests, "size": self.size}

    @property
    def warnings(self) -> tuple[str, ...]:
        if not self.pinned_from:
            return ()
        return (f"{self.name}: md5/sha256 not written -- the URL itself did not answer and "
                f"the bytes came from {self.pinned_from}, a copy; run `densezoo manifest add` "
                "again where the URL answers",)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "file_name": self.file_name,
                "size": self.size, "md5": self.md5, "sha256": self.sha256,
                "manifest": self.manifest or "-", "pinned_from": self.pinned_from,
                "state": "added" if self.manifest else "printed"}


def _default_name(source: str) -> str:
    stem = source.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    stem = re.sub(r"\.(pkl|pth|pt|json|yaml|tar\.gz|tgz|tar|zip|bin)$", "", stem)
    return re.sub(r"[^A-Za-z0-9._+-]", "_", stem).lstrip("._-+") or "artifact"


def _entry_url(source: str, url: str | None, many: bool) -> str:
    if "://" in source:
        return source
    if url is None:
        raise UsageError(f"{source} is a local file: give --url, where others download it "
                         "from (a URL ending in / gets the file name appended)")
    if url.endswith("/"):
        return url + os.path.basename(source)
    if many:
        raise UsageError("--url names one file; with several files give a URL ending in / "
                         "(each file name is appended)")
    return url


def add(core: "Core", sources: list[str], *, name: str | None = None, url: str | None = None,
        to: str | os.PathLike[str] | None = None, kind: str | None = None,
        description: str | None = None, zoo: str = "local") -> list[AddedEntry]:
    """Hash each FILE or URL and append an entry per source to ``to`` (atomic; the
    result is validated as a manifest before it is written), or only return them."""
    from ..disk import store_errors, write_text_atomic
    from ..manifest_edit import append_entries

    if not sources:
        raise UsageError("name at least one FILE or URL")
    if name is not None and len(sources) > 1:
        raise UsageError("--name names one entry; with several sources each is named after "
                         "its file")
    target = Path(to) if to is not None else None
    text = ""
    if target is not None and target.exists():
        from ..manifest import read_manifest

        text = read_manifest(target)[1]
        existing = {a.name.lower() for a in parse_manifest(text, str(target)).artifacts}
    else:
        existing = set()
    added: list[AddedEntry] = []
    for source in sources:
        entry_name = check_name(name or _default_name(source), "--name")
        if entry_name.lower() in existing | {a.name.lower() for a in added}:
            raise UsageError(f"{entry_name!r} is already in {target or 'this batch'}",
                             hint="choose another --name (or edit the manifest)")
        entry_url = check_url(_entry_url(source, url, len(sources) > 1), "--url", entry_name)
        path, d, copy = _bytes_of(core, source, entry_name, entry_url)
        assert d.md5 is not None and d.sha256 is not None and d.size is not None
        added.append(AddedEntry(entry_name, entry_url, os.path.basename(entry_url.split("?")[0]),
                                d.size, None if copy else d.md5, None if copy else d.sha256,
                                str(target) if target else None, copy))
    if target is not None:
        entries = [{**a.entry(), **({"kind": kind} if kind else {}),
                    **({"description": description} if description else {})} for a in added]
        new = append_entries(text, entries, source=str(target), zoo=zoo)
        parse_manifest(new, str(target))             # never write an invalid manifest
        with store_errors("write the manifest", target):
            write_text_atomic(target, new)
    return added


def _bytes_of(core: "Core", source: str, name: str,
              url: str) -> tuple[Path, Digests, str | None]:
    """The file, its digests, and the copy that served them when it was not the URL itself
    (then the digests are not written as published).  A URL's verified copy lands in the
    store (its digests come from the download's own pass); a local file is hashed once
    and scanned if a pickle."""
    if "://" in source:
        from ..errors import DownloadFailedError

        art = parse_entry({"name": name, "url": url, "md5": None}, "manifest add", "local", 0)
        # md5/sha256 mean "published": only the origin's own bytes may be written there.
        # So the URL itself is asked first, without mirrors, and a copy already cached
        # from a mirror (or another user) is fetched again from it.
        origin = type(core)(core.settings.replace(mirrors=()))
        try:
            got = origin.fetch(art)
            if not _from_origin(origin, art, got.digests):
                got = origin.fetch(art, force=True)
        except DownloadFailedError:
            if not core.settings.mirrors:
                raise
            got = core.fetch(art)                 # only a copy answers: no digests written
        d = got.digests if got.digests is not None and got.digests.sha256 \
            else hash_file(got.path)
        pin = core.trust.record_of(art).pin
        return got.path, d, (None if _from_origin(core, art, d) else
                             pin.source if pin is not None else "a copy")
    p = Path(source)
    if not p.is_file():
        raise UsageError(f"{source}: no such file" if not p.exists() else
                         f"{source} is not a regular file")
    try:
        digests = hash_file(p)
    except OSError as e:
        raise StoreError(f"cannot read {source} ({e.strerror or e})", path=str(p)) from None
    if p.suffix == ".pkl" or url.endswith(".pkl"):
        report = core.scan_file(str(p))
        if not report.ok:
            raise PolicyError(f"{source} is not a safe pickle: {report.reason}; no entry was "
                              "written for it", hint="`densezoo scan FILE` shows what it imports")
    return p, digests, None


def _from_origin(core: "Core", art, digests) -> bool:
    """The record's binding voucher for these bytes is the origin's."""
    pin = core.trust.record_of(art).pin
    return (pin is not None and pin.kind == "origin" and digests is not None
            and pin.agrees(digests))
