"""``densezoo convert``'s answer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ConvertResult:
    """A checkpoint converted, with the proof it reads back bit-exact.

    ``source_sha256`` is the sha256 of the pickle the tensors came from (also written
    in the file's header); ``stored`` says whether ``path`` is the store's derived copy
    of an artifact (``<cache>/derived/...``) rather than a file the caller named."""

    name: str | None              # the artifact converted (None: a file given by path)
    source: Path
    source_sha256: str
    path: Path
    format: str
    layout: str
    tensors: int
    nbytes: int
    stored: bool
    reused: bool = False          # an earlier conversion of the same bytes, read back again

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": str(self.source),
                "source_sha256": self.source_sha256, "path": str(self.path),
                "format": self.format, "layout": self.layout, "tensors": self.tensors,
                "nbytes": self.nbytes, "stored": self.stored, "reused": self.reused}
