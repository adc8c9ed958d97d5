"""Run the real densezoo CLI with one fault injected at an exact instant (test-only).

``python tests/inject.py HOOK -- <densezoo arguments>``: installs HOOK, then runs
``densezoo.cli.main`` in this process.  Some windows are microseconds wide (a
SIGKILL between two steps of ``Transfer.reset``) or need the kernel in a state a
test cannot time from outside (a disk that fills exactly when a block is
recorded); these hooks reach them.  Nothing in ``src/`` knows this module: the
hooks wrap library functions from outside, the way a debugger would.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _kill_after_reset_truncates() -> None:
    """SIGKILL right after ``Transfer.reset`` cut the partial, before anything else."""
    from densezoo.store import files

    real = files.Partial.open

    def open_(self, offset, keep_tail=False):
        f = real(self, offset, keep_tail)
        if sys._getframe(1).f_code.co_name == "reset":
            f.close()
            os.kill(os.getpid(), signal.SIGKILL)
        return f

    files.Partial.open = open_


def _short_write_once() -> None:
    """The first ``os.pwrite`` of a big chunk writes half of it and says so, as a nearly
    full or network filesystem does."""
    real = os.pwrite
    done = []

    def pwrite(fd, data, offset):
        if not done and len(data) > 4096:
            done.append(offset)
            return real(fd, bytes(data[: len(data) // 2]), offset)
        return real(fd, data, offset)

    os.pwrite = pwrite


def _fill_disk_when_a_block_is_recorded() -> None:
    """When the block at the start of the file is about to be recorded -- the one the
    hashing follower waits on -- fill the filesystem it is on (a real ENOSPC from the
    kernel for the record's write)."""
    from densezoo.download import transfer

    real = transfer.Transfer.block_done
    filled = []

    def block_done(self, start, end):
        if not filled and start == 0:
            filled.append(start)
            fd = os.open(Path(self.sink.path).parent / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while os.write(fd, b"\0" * 4096):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
        return real(self, start, end)

    transfer.Transfer.block_done = block_done


def _kill_before_a_temp_is_renamed() -> None:
    """SIGKILL when a temp file or folder (``disk.temp_path``'s name) is complete and about
    to be renamed into place as ``$DZ_KILL_NAME``: the moment a kill leaves the most
    behind (a whole bundle, a whole unpacked archive)."""
    from densezoo.disk import TEMP

    name = os.environ["DZ_KILL_NAME"]

    def killing(real):
        def rename(src, dst, *args, **kwargs):
            if TEMP in os.fsdecode(src) and os.path.basename(os.fsdecode(dst)) == name:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(src, dst, *args, **kwargs)
        return rename

    os.replace = killing(os.replace)
    os.rename = killing(os.rename)


def _slow_progress() -> None:
    """Every ``Progress.advance`` waits ``$DZ_SLOW`` seconds per MiB first: a long operation
    (hashing, unpacking, copying) on small test files, so a bar is on screen long enough
    to be drawn, or a signal lands in the middle of the work."""
    import time

    from densezoo import progress

    real = progress.progress_for
    delay = float(os.environ.get("DZ_SLOW", "0.2"))

    class Slow:
        def __init__(self, inner):
            self.inner = inner

        def start(self, label, total, initial=0):
            self.inner.start(label, total, initial)

        def advance(self, n):
            time.sleep(delay * n / (1 << 20))
            self.inner.advance(n)

        def close(self):
            self.inner.close()

    progress.progress_for = lambda arg, item: Slow(real(arg, item))


HOOKS = {"kill-after-reset-truncates": _kill_after_reset_truncates,
         "slow-progress": _slow_progress,
         "kill-before-a-temp-is-renamed": _kill_before_a_temp_is_renamed,
         "short-write-once": _short_write_once,
         "fill-disk-when-a-block-is-recorded": _fill_disk_when_a_block_is_recorded}


if __name__ == "__main__":
    hook, sep, *args = sys.argv[1:]
    assert sep == "--", "usage: inject.py HOOK -- densezoo-args"
    HOOKS[hook]()
    sys.argv = ["densezoo", *args]
    from densezoo.cli import main

    main()
