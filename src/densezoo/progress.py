"""Progress reporting as a tiny protocol, so the downloader never imports a UI library.

The CLI plugs in a rich display; library users get tqdm.auto (which renders
well in notebooks) by passing ``progress=True``; everyone else gets nothing.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Protocol, Union


# A label that is not a download's starts with its phase: "hash model_final.pkl",
# "unpack UV_data.tar.gz", "copy ..." (bundle, export, mirror build), "import ...".
PHASES = ("hash", "unpack", "copy", "import")


def bar_label(label: str, name: str | None) -> str:
    """What a bar says: the artifact's ``name`` (when the display knows it) in place of the
    file name, after the phase ("unpack densepose_uv_data"); a download: just the name."""
    if not name:
        return label
    verb = label.split(" ", 1)[0]
    return f"{verb} {name}" if verb in PHASES else name


class Progress(Protocol):
    """``start`` may be called again for the same file when a retry restarts it, or with
    a new phase's label (a download, then ``unpack``) on the same bar."""

    def start(self, label: str, total: int | None, initial: int = 0) -> None: ...
    def advance(self, n: int) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    def start(self, label: str, total: int | None, initial: int = 0) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class _LogRedirect:
    """While any tqdm bar is open, console log handlers write through ``tqdm.write``, so a
    log line lands above the bars instead of being glued to the end of one.  One
    ``logging_redirect_tqdm`` for all bars (several artifacts at once open several)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self._ctx: Any = None

    def enter(self) -> None:
        with self._lock:
            self._open += 1
            if self._open == 1:
                from tqdm.contrib.logging import logging_redirect_tqdm

                self._ctx = logging_redirect_tqdm()
                self._ctx.__enter__()

    def leave(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open == 0 and self._ctx is not None:
                self._ctx.__exit__(None, None, None)
                self._ctx = None


_REDIRECT = _LogRedirect()


class TqdmProgress:
    """tqdm.auto bar for library and notebook users (imported only when used); logging
    to the console goes above the bar while it is open."""

    def __init__(self, name: str | None = None) -> None:
        self._bar = None
        self.name = name          # the artifact's name, shown instead of its file name

    def start(self, label: str, total: int | None, initial: int = 0) -> None:
        from tqdm.auto import tqdm

        label = bar_label(label, self.name)
        self.close()          # a retry that restarts from zero starts a fresh bar
        _REDIRECT.enter()
        self._bar = tqdm(total=total, initial=initial, desc=label, unit="B", unit_scale=True,
                         unit_divisor=1024, leave=False)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            _REDIRECT.leave()


# What a caller may pass as ``progress=``: nothing, True (tqdm.auto), one Progress for
# everything, or a factory making one Progress per artifact (the CLI's rich display).
ProgressArg = Union[bool, None, Progress, Callable[[Any], Progress]]


def progress_for(progress: ProgressArg, item: Any) -> Progress:
    """The Progress to use for one item (artifact) of a call."""
    if progress is None or progress is False:
        return NoProgress()
    if progress is True:
        return TqdmProgress(getattr(item, "name", None))
    if callable(progress) and not hasattr(progress, "advance"):
        return progress(item)
    return progress  # type: ignore[return-value]


class Reading:
    """A binary file whose ``read`` tells ``progress`` of every byte read: what a copy
    through someone else's loop (``tarfile.addfile``) reports with."""

    def __init__(self, f: Any, progress: Progress) -> None:
        self.f, self.progress = f, progress

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.progress.advance(len(data))
        return data
