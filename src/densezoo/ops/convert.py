"""``densezoo convert``: a pickle checkpoint rewritten as safetensors, proven before kept.

The source is built by the restricted loader (nothing in it runs), written with the real
``safetensors`` package to a temporary name beside the destination, read back and
compared tensor by tensor (name, dtype, shape, bytes) and metadata; only a conversion
that reads back exact is renamed into place.  An artifact converted by name lands in the
store (``<cache>/derived/<host>/<url path>.safetensors``) beside a ``.dzmeta`` record of
its source's name, URL and sha256; a later call whose source hash matches reuses it after
proving it again against the source.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..disk import read_json, store_errors, temp_path, utc_now, write_json_atomic
from ..errors import UsageError
from ..hashing import hash_file
from ..results.convert import ConvertResult

if TYPE_CHECKING:
    from ..core import Core

FORMATS = {"safetensors": ".safetensors"}


def convert(core: "Core", target: str | os.PathLike[str], *, to: str = "safetensors",
            output: str | os.PathLike[str] | None = None) -> ConvertResult:
    """Convert a checkpoint (a path, or an artifact's verified store copy) to ``to``."""
    from ..content.safetensors_file import (ConversionError, round_trip_problem,
                                            write_safetensors)
    from ..content.tensors import UNKNOWN
    from ..content.weights import read_weights

    if to not in FORMATS:
        raise UsageError(f"cannot convert to {to!r}", hint="the one format is: safetensors")
    art = None
    if os.path.isfile(target):
        source = Path(target)
    else:
        art = core.artifact(os.fspath(target))
        source = core.fetch(art).path
    weights = read_weights(source, name=art.name if art else None)
    if weights.layout == UNKNOWN:
        raise ConversionError(f"{weights.path} is not a checkpoint densezoo can convert: "
                              f"{weights.reason}",
                              hint="convert takes detectron2 and Detectron (v1) weight files")
    sha256 = hash_file(source, ("sha256",)).sha256 or ""
    stored = output is None and art is not None
    if output is not None:
        dest = Path(output)
    elif art is not None:
        dest = core.store.layout.check_no_links(core.store.layout.derived(art, FORMATS[to]))
    else:
        dest = source.with_suffix(FORMATS[to])
    record = core.store.layout.meta(dest)
    reused = stored and dest.is_file() and (read_json(record) or {}).get("source_sha256") == sha256
    if reused:
        problem = round_trip_problem(weights, dest)
        if problem:
            reused = False                    # damaged since: made again below
    if not reused:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(dest)              # names its writer: prune knows if it was killed
        try:
            with store_errors("cannot write the converted file", dest.parent):
                write_safetensors(weights, tmp, source_sha256=sha256)
            problem = round_trip_problem(weights, tmp)
            if problem:
                raise ConversionError(
                    f"the conversion of {weights.path} did not read back exact: {problem}",
                    hint="nothing was written; report it (the .pkl still loads with "
                         "densezoo.load_weights)")
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if stored:
            assert art is not None
            # TRUST-RECORD: a derived file is vouched for by its source's record plus this
            # conversion's proof; the record has no "derived" kind yet, and derived/ is not
            # per-user like trust/<uid>/ -- so a reuse is proven against the source again.
            write_json_atomic(record, {"source": art.name, "source_url": art.url,
                                       "source_sha256": sha256, "format": to,
                                       "created": utc_now()})
    return ConvertResult(art.name if art else None, source, sha256, dest, to, weights.layout,
                         len(weights.tensors), sum(a.nbytes for a in weights.tensors.values()),
                         stored, reused)
