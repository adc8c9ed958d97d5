"""An iopath PathHandler: detectron2's PathManager gets verified files from densezoo.

detectron2 loads ``MODEL.WEIGHTS`` and every runtime file through iopath, whose
HTTP handler downloads unverified into its own cache.  Registering this handler
makes the same URLs (and ``detectron2://``, ``densezoo://NAME``) resolve to the
verified store instead::

    from iopath.common.file_io import PathManager
    from densezoo.iopath import DensezooHandler

    pm = PathManager()
    pm.register_handler(DensezooHandler())
    pm.get_local_path("https://dl.fbaipublicfiles.com/densepose/.../model_final_162be9.pkl")

It claims ``densezoo://``, ``detectron2://``, ``catalog://`` and the whole of
``http://``, ``https://`` and ``ftp://`` (iopath's own HTTP handler also takes
``ftp://``, so an unclaimed ``ftp://`` URL was downloaded unverified with no warning;
no manifest can list one, so it is warned about, or refused in strict mode, like any
unlisted URL).  iopath matches prefixes as plain strings, so claiming
only the manifests' hosts let ``http://LOCALHOST:port/…``, an explicit default port
or a trailing dot reach iopath's own handler and download unverified.  Every URL is
normalised (``urls.url_identity``) before the lookup; a URL no entry lists is handed to
iopath's HTTP handler with a warning, or refused in strict mode; a checksum failure
raises densezoo's error.  Nothing unverified is handed out silently.
Install with ``pip install 'densezoo[iopath]'``.
"""

from __future__ import annotations

import warnings
from typing import IO, Any

from iopath.common.file_io import HTTPURLHandler, PathHandler

from .api import Zoo
from .configs import UrlIndex, expand
from .errors import NotCachedError, PolicyError
from .urls import redact


class UnverifiedDownloadWarning(UserWarning):
    """A URL under a host densezoo claims, but in no manifest: fetched without a check."""


class DensezooHandler(PathHandler):
    def __init__(self, zoo: Zoo | None = None) -> None:
        super().__init__()
        self.zoo = zoo or Zoo()          # DENSEZOO_* variables: manifests, cache, mirrors
        self._index: UrlIndex | None = None
        self._http = HTTPURLHandler()

    @property
    def index(self) -> UrlIndex:
        if self._index is None:
            self._index = UrlIndex(self.zoo.catalog)
        return self._index

    def _get_supported_prefixes(self) -> list[str]:
        return ["densezoo://", "detectron2://", "catalog://", "http://", "https://", "ftp://"]

    def _local(self, path: str) -> str:
        art = self.index.find(path)
        if art is not None:
            return str(self.zoo.fetch(art).path)
        if path.startswith("densezoo://"):
            self.zoo.artifact(path[len("densezoo://"):].strip("/"))   # raises: unknown name
        url = expand(path)
        if url is None:
            raise NotCachedError(path, hint="detectron2's ModelCatalog has no such entry")
        if self.zoo.settings.strict:
            raise PolicyError(f"{redact(path)} is not in any manifest and strict mode is on",
                              hint="add it to a manifest, or drop DENSEZOO_STRICT")
        warnings.warn(f"densezoo: {redact(path)} is not in any manifest; downloading it "
                      "unverified", UnverifiedDownloadWarning, stacklevel=3)
        return self._http._get_local_path(url)

    def _get_local_path(self, path: str, force: bool = False, **kwargs: Any) -> str:
        self._check_kwargs(kwargs)
        return self._local(path)

    def _open(self, path: str, mode: str = "r", buffering: int = -1, **kwargs: Any) -> IO[Any]:
        self._check_kwargs(kwargs)
        if any(c in mode for c in "wax+"):
            raise PolicyError(f"{path} is read-only through densezoo (mode {mode!r})")
        return open(self._local(path), mode, buffering=buffering)

    def _exists(self, path: str, **kwargs: Any) -> bool:
        self._check_kwargs(kwargs)
        return self.index.find(path) is not None

    def _isfile(self, path: str, **kwargs: Any) -> bool:
        return self._exists(path, **kwargs)

    def cached(self, path: str) -> str:
        """The verified cached path of a reference, never downloading (NotCachedError)."""
        art = self.index.find(path)
        if art is None:
            raise NotCachedError(path, hint="no manifest lists this URL")
        return str(self.zoo.path(art))
