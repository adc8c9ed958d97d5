"""HTTP transport: one URL into one partial file, hashed as the bytes arrive.

``http.Downloader`` owns requests, redirects, retries and the response checks;
``transfer.Transfer`` is the state of one file across attempts (the partial,
the running hash, the counters); ``segmented`` fetches the rest of a file over
several Range connections.  Nothing here knows about manifests, the store or
the CLI: a download writes into any ``transfer.Sink`` and raises TransferError
for a URL that failed, leaving the choice of the next URL to the caller.
"""

from .http import Downloader, new_session
from .transfer import DownloadResult, Sink

__all__ = ["Downloader", "DownloadResult", "Sink", "new_session"]
