"""Putting verified files where other tools look for them: a folder, a DensePose checkout.

Everything exported starts from a verified copy (``Zoo.fetch``), so what leaves
the store is what was checked.  Links by default (no second copy of a 1 GiB
weight), falling back to a copy where the filesystem cannot link.
"""

from __future__ import annotations

import errno
import os
import posixpath
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable
from urllib.parse import urlsplit

from ..disk import copy_file, store_errors, sweep_temps, temp_path
from ..progress import ProgressArg, progress_for
from ..errors import DensezooError, UsageError
from ..hashing import hash_file
from ..content.unpack import EXTRACT_STAMP
from ..results.share import ExportResult

if TYPE_CHECKING:
    from ..core import Core
    from ..manifest import Artifact
    from ..progress import Progress

LINK_MODES = ("symlink", "hardlink", "copy")
IOPATH_MAX_NAME = 250            # iopath's HTTPURLHandler.MAX_FILENAME_LEN
# Where the DensePose v1 code looks for things, relative to the repo root.
DENSEPOSE_LAYOUT = {
    "densepose_coco_2014_train": "DensePoseData/DensePose_COCO",
    "densepose_coco_2014_valminusminival": "DensePoseData/DensePose_COCO",
    "densepose_coco_2014_minival": "DensePoseData/DensePose_COCO",
    "densepose_coco_2014_test": "DensePoseData/DensePose_COCO",
    "densepose_uv_data": "DensePoseData",          # the tarball holds UV_data/
    "densepose_eval_data": "DensePoseData",        # the tarball holds eval_data/
}


def place(src: Path, dest: Path, mode: str, force: bool,
          progress: "Progress | None" = None) -> str:
    """Link or copy src to dest atomically; falls back to a copy where links fail.  A
    copy's bytes are reported on ``progress`` (a link is instant: nothing to report)."""
    if dest.is_symlink() and os.path.realpath(dest) == str(src.resolve()):
        return "unchanged"
    if dest.exists() and not dest.is_symlink() and dest.is_file() and (
            os.path.samefile(src, dest) or _same_bytes(src, dest)):
        return "unchanged"
    if (dest.exists() or dest.is_symlink()) and not force:
        raise DensezooError(f"{dest} already exists and is not this artifact's file",
                            hint="pass --force to replace it, or export somewhere else")
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_temps(dest.parent, dest.name)     # a killed export's or mirror build's leftover
    tmp = temp_path(dest)
    used = mode
    try:
        if mode == "symlink":
            try:
                os.symlink(src.resolve(), tmp)
            except OSError:
                used = "copy"
        elif mode == "hardlink":
            try:
                os.link(src, tmp)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                used = "copy"
        if used == "copy":
            copy_file(src, tmp, progress)
        os.replace(tmp, dest)
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
    return used


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return hash_file(a, ("sha256",)).sha256 == hash_file(b, ("sha256",)).sha256


def _export_iopath(core: "Core", arts: list["Artifact"], root: Path, link: str,
                   force: bool, progress: ProgressArg = None) -> list[ExportResult]:
    out = []
    for art in arts:
        src = core.fetch(art, progress=progress).path
        for dest in iopath_paths(art, root):
            with store_errors("export", dest.parent):
                out.append(ExportResult(art.name, dest, place(src, dest, link, force,
                                                              progress_for(progress, art))))
    return out


def _place_tree(src: Path, dest: Path, mode: str, force: bool) -> str:
    if mode == "symlink":
        return place(src, dest, "symlink", force)
    used = mode
    for p in src.rglob("*"):
        if p.is_file():
            used = place(p, dest / p.relative_to(src), mode, force)
    return used


def iopath_cache_dir() -> Path:
    """Where iopath (detectron2's PathManager) caches downloads: $FVCORE_CACHE, else
    ~/.torch/iopath_cache (iopath's ``get_cache_dir``)."""
    return Path(os.path.expanduser(os.environ.get("FVCORE_CACHE", "~/.torch/iopath_cache")))


def iopath_paths(art: "Artifact", root: Path) -> list[Path]:
    """Where iopath's HTTPURLHandler looks for each URL the artifact is known under.

    iopath keeps ``<cache>/<dirname of the URL path>/<last segment of the URL>`` (the
    query string stays in the file name) and skips the network when that file exists.
    """
    out = []
    for url in _iopath_urls(art):
        parts = urlsplit(url)
        folder = posixpath.dirname(parts.path.lstrip("/"))
        name = url.split("/")[-1]
        if len(name) > IOPATH_MAX_NAME or ".." in folder.split("/"):
            continue                 # iopath would pick a random name: nothing to seed
        path = root.joinpath(*[p for p in folder.split("/") if p], name)
        if path not in out:
            out.append(path)
    return out


def _iopath_urls(art: "Artifact") -> list[str]:
    """The URLs iopath could be handed for this artifact: the upstream URL first, then the
    http(s) mirrors and legacy URLs, and an ``hf://`` copy as the Hub's https resolve URL
    (what a script passes to apply_net).  Other schemes (``s3://``) iopath never caches,
    and an ``hf://`` spelling itself is no path iopath looks at -- whichever source served
    the bytes, the upstream URL's path is seeded."""
    from ..download import hf
    from ..sources import scheme_of

    urls = []
    for url in (art.url, *art.mirrors, *art.legacy_urls):
        if scheme_of(url) == "hf":
            try:
                url = hf.parse(url).resolve_url(hf.DEFAULT_ENDPOINT)
            except ValueError:
                continue
        if scheme_of(url) in ("http", "https"):
            urls.append(url)
    return urls


def _export_flat(core: "Core", arts: list["Artifact"], to: Path, link: str, force: bool,
                 progress: ProgressArg = None, densepose: bool = False) -> list[ExportResult]:
    """Every file in ``to`` (two ``model_final.pkl`` get a folder each); ``densepose``: in
    the folders of a DensePose v1 checkout, data tarballs unpacked."""
    counts: dict[str, int] = {}
    for a in arts:
        counts[a.file_name] = counts.get(a.file_name, 0) + 1
    out = []
    for art in arts:
        sub = DENSEPOSE_LAYOUT.get(art.name, "") if densepose else ""
        if sub and art.kind == "data":
            unpacked = core.extract(art, progress=progress).path
            for child in sorted(unpacked.iterdir()):
                if child.name == EXTRACT_STAMP:
                    continue
                dest = to / sub / child.name
                mode = (_place_tree if child.is_dir() else place)(child, dest, link, force)
                out.append(ExportResult(art.name, dest, mode))
            continue
        src = core.fetch(art, progress=progress).path
        folder = to / sub if sub else to
        if counts[art.file_name] > 1:       # two model_final.pkl: one folder each
            folder = folder / art.name
        dest = folder / art.file_name
        with store_errors("export", dest.parent):
            out.append(ExportResult(art.name, dest, place(src, dest, link, force,
                                                          progress_for(progress, art))))
    return out


def _export_densepose(core, arts, to, link, force, progress=None):
    return _export_flat(core, arts, to, link, force, progress, densepose=True)


@dataclass(frozen=True)
class ExportLayout:
    place: Callable[..., list[ExportResult]]     # (core, arts, to, link, force, progress)
    default_dir: Callable[[], Path] | None = None
    help: str = ""


# name -> how files are placed; the CLI's --layout choices are this table's keys.
LAYOUTS: dict[str, ExportLayout] = {
    "flat": ExportLayout(_export_flat, help="every file in the target folder"),
    "densepose": ExportLayout(_export_densepose, help="the folders of a DensePose v1 checkout"),
    "iopath": ExportLayout(_export_iopath, iopath_cache_dir,
                           "where detectron2's iopath cache looks (default $FVCORE_CACHE)"),
}


def export(core: "Core", names: Iterable[str], to: Path | None, *, link: str = "symlink",
           layout: str | None = None, force: bool = False,
           progress: ProgressArg = None) -> list[ExportResult]:
    """Put verified copies (links by default) of artifacts into ``to``, placed as
    ``LAYOUTS[layout]`` says (``None``: flat); the bytes fetched, unpacked and copied
    are reported on ``progress``.

    ``layout="iopath"`` places each file where detectron2's download cache expects
    it (``to`` defaults to that cache), so unmodified scripts read verified bytes.
    """
    if link not in LINK_MODES:
        raise UsageError(f"unknown link mode {link!r}", hint="use symlink, hardlink or copy")
    chosen = LAYOUTS.get(layout or "flat")
    if chosen is None:
        raise UsageError(f"unknown layout {layout!r}", hint="use " + ", ".join(LAYOUTS))
    arts = core.resolve(names)
    if to is None:
        if chosen.default_dir is None:
            raise UsageError("name a target folder with --to",
                             hint="only --layout iopath has a default folder")
        to = chosen.default_dir()
    return chosen.place(core, arts, to, link, force, progress)
