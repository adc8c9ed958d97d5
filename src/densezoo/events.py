"""Trust events for Python callers: ``warnings`` they can filter, and the ``densezoo`` logger.

The CLI prints what a result says; a notebook or pipeline user calling
``densezoo.fetch`` would otherwise never learn that a file was pinned on first use
or came from a mirror that only an md5 prefix checked.  So those events are also
issued as a ``UnverifiedWarning`` (``warnings.simplefilter("error",
densezoo.UnverifiedWarning)`` turns them into errors) and logged at WARNING on the
``densezoo`` logger, which has a ``NullHandler`` so nothing prints unless the
application configures logging.  The library itself still never prints.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .errors import DensezooWarning, PinConflictWarning, UnverifiedWarning

if TYPE_CHECKING:
    from .results.fetch import FetchOutcome, FetchResult

__all__ = ["DensezooWarning", "PinConflictWarning", "UnverifiedWarning", "announce",
           "announce_all", "conflict"]
_logger: Any = None


def _log() -> Any:
    """The ``densezoo`` logger, imported on first use (``logging`` costs start-up time that
    ``densezoo path`` does not need)."""
    global _logger
    if _logger is None:
        import logging

        _logger = logging.getLogger("densezoo")
        _logger.addHandler(logging.NullHandler())
    return _logger


def announce(result: "FetchResult") -> "FetchResult":
    """Log what happened at INFO (what was downloaded, from where, or found cached: what a
    notebook user reads, as pooch logs it) and the result's warnings, and issue its trust
    event: weak bytes (weaker than ``prefix``) warn once, when they enter the store or
    this user's record -- a warm fetch or ``path`` of the same file is silent, in the CLI
    and here alike."""
    from .results import WEAK
    from .units import human_size
    from .urls import redact_text

    if str(result.action) == "cached":
        _log().info(redact_text(f"{result.name}: found cached at {result.path} "
                                f"(checksum: {result.strength})"))
    else:
        _log().info(redact_text(
            f"{result.name}: {result.action} {human_size(result.transferred)}"
            + (f" from {result.url}" if result.url else "")
            + f" to {result.path} (checksum: {result.strength})"))
    for text in result.warnings:
        _log().warning(text)
    if result.entered and result.strength in WEAK:
        text = next((w for w in result.warnings if str(result.strength) in w),
                    f"{result.name}: {result.strength} -- nothing published vouches for "
                    "these bytes")
        warnings.warn(text, UnverifiedWarning, stacklevel=4)
    return result


def announce_all(outcomes: Iterable["FetchOutcome"]) -> None:
    for o in outcomes:
        if o.result is not None:
            announce(o.result)


# What the CLI shows while it waits (retries, another process's download): a callable
# taking one line, set by the CLI when stderr is a terminal or -v is given.  Library
# callers get the same lines on the ``densezoo`` logger at INFO.
_listener: Callable[[str], None] | None = None


def listen(fn: Callable[[str], None] | None) -> None:
    global _listener
    _listener = fn


def say(text: str) -> None:
    if _listener is not None:
        _listener(text)
    _log().info(text)


def retrying(url: str, delay: float, attempt: int, attempts: int, reason: str) -> None:
    say(f"retrying {url} in {delay:.1f}s (attempt {attempt}/{attempts}: {reason})")


def conflict(name: str, conflicts: Iterable[str]) -> None:
    for c in conflicts:
        text = f"{name}: the first-use pin disagrees with the published value ({c})"
        _log().warning(text)
        warnings.warn(text, PinConflictWarning, stacklevel=4)
