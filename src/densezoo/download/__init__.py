"""Transport: one URL into one partial file, hashed as the bytes arrive.

``http.Downloader`` owns requests, redirects, retries and the response checks;
``wire`` holds the HTTP vocabulary and the one retry policy; ``transfer`` is the
state of one file across attempts (the partial, its resume record, the running
hash); ``segmented`` fetches the rest of a file over several Range connections;
``sources`` maps a URL scheme (https, s3, ...) to how it is requested.  Nothing
here knows manifests, the store or the CLI: a download writes into any
``transfer.Sink`` and raises TransferError for a URL that failed.

Exports are lazy: importing ``download.health`` (say, for ``list``) must not
import requests.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Downloader", "DownloadResult", "Sink", "new_session"]


def __getattr__(name: str) -> Any:
    if name in ("Downloader", "new_session"):
        from . import http

        return getattr(http, name)
    if name in ("DownloadResult", "Sink"):
        from . import transfer

        return getattr(transfer, name)
    raise AttributeError(name)
