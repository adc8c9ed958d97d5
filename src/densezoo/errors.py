"""Typed errors that carry their facts, and the exit code the CLI maps each to.

Every error knows what failed (the fields), what to do about it (``hint``) and
which exit code a pipeline should see (``exit_code``).  The CLI prints
``str(error)`` and, on its own line, the hint; it never has to guess.  Several
classes also derive from a stdlib type so library callers can catch them the
way they already catch ``KeyError`` or ``OSError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Sequence

# Exit codes: the contract with CI pipelines.  Documented in README and `--help`.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNKNOWN_ARTIFACT = 3
EXIT_CHECKSUM = 4
EXIT_DOWNLOAD = 5
EXIT_NOT_CACHED = 6
EXIT_MANIFEST = 7
EXIT_STORE = 8
EXIT_POLICY = 9


class Label(str, Enum):
    """An enum whose members print, format and serialise (JSON) as their plain value.

    Statuses and strengths are compared in code and shown to users; a ``str``
    enum gives both without ``.value`` everywhere (``enum.StrEnum`` is 3.11+).
    """

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class DensezooWarning(UserWarning):
    """Base of densezoo's warnings (issued for Python callers by ``events``)."""


class UnverifiedWarning(DensezooWarning):
    """Bytes handed out that nothing published vouches for: a first-use pin, a cached
    copy not pinned yet, or a mirror's bytes that only an md5 prefix checked."""


class PinConflictWarning(DensezooWarning):
    """A first-use pin disagrees with a checksum a manifest now publishes."""


class DensezooError(Exception):
    """Base of every error densezoo raises on purpose."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    @property
    def headline(self) -> str:
        """The message as the CLI's one line shows it, when ``details`` follow it."""
        return self.message

    @property
    def details(self) -> tuple[str, ...]:
        """Lines the CLI prints under the one-line message (e.g. one per URL tried)."""
        return ()


class UsageError(DensezooError):
    """A request that cannot mean anything (an empty selection, a bad setting)."""

    exit_code = EXIT_USAGE


class ManifestError(DensezooError, ValueError):
    """A manifest that cannot be trusted: names the file, the entry and the problem.
    Subclasses say what the file is (a config, a bundle): the message names it so."""

    exit_code = EXIT_MANIFEST
    what = "manifest"

    def __init__(self, source: str, problem: str, *, entry: str | None = None,
                 hint: str | None = None) -> None:
        where = f"{source}: entry {entry!r}" if entry else source
        super().__init__(f"invalid {self.what} {where}: {problem}",
                         hint=hint or f"fix the {self.what} file and run the command again")
        self.source = source
        self.entry = entry
        self.problem = problem


class BundleError(ManifestError):
    """A file given to ``import`` that is not a usable densezoo bundle."""

    what = "bundle"


class UnknownArtifactError(DensezooError, KeyError):
    """A name that matches no artifact; carries close matches to suggest."""

    exit_code = EXIT_UNKNOWN_ARTIFACT

    def __init__(self, name: str, suggestions: Sequence[str] = (), *,
                 hint: str | None = None) -> None:
        self.name = name
        self.suggestions = list(suggestions)
        hint = hint or (("did you mean: " + ", ".join(self.suggestions) + "?")
                        if self.suggestions else "run `densezoo list` to see every artifact")
        super().__init__(f"unknown artifact {name!r}", hint=hint)

    # KeyError.__str__ would add quotes; keep the plain message.
    __str__ = DensezooError.__str__


class AmbiguousArtifactError(DensezooError, KeyError):
    """A name (often a shared file name) that matches several artifacts."""

    exit_code = EXIT_UNKNOWN_ARTIFACT

    def __init__(self, name: str, candidates: Sequence[str]) -> None:
        self.name = name
        self.candidates = list(candidates)
        super().__init__(
            f"{name!r} matches {len(self.candidates)} artifacts: " + ", ".join(self.candidates),
            hint="name one of them exactly")

    __str__ = DensezooError.__str__


class UnknownNamesError(DensezooError, KeyError):
    """Several names of one command resolved to nothing: all reported together, before
    anything is downloaded (``errors`` has one error per name, with its suggestions)."""

    exit_code = EXIT_UNKNOWN_ARTIFACT

    def __init__(self, errors: Sequence[DensezooError]) -> None:
        self.errors = list(errors)
        names = [getattr(e, "name", "?") for e in self.errors]
        super().__init__(
            f"unknown artifact{'s' if len(names) > 1 else ''}: "
            + ", ".join(repr(n) for n in names) + "; nothing was downloaded",
            hint="fix these names (or drop them) and run the command again")

    @property
    def details(self) -> tuple[str, ...]:
        return tuple(f"{e}" + (f" (hint: {e.hint})" if e.hint else "") for e in self.errors)

    __str__ = DensezooError.__str__


class ChecksumMismatchError(DensezooError):
    """Bytes that do not match what was expected; the file was not published."""

    exit_code = EXIT_CHECKSUM

    def __init__(self, what: str, algorithm: str, expected: str, actual: str, *,
                 url: str | None = None, path: str | None = None,
                 hint: str | None = None) -> None:
        self.what = what
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        self.url = url
        self.path = path
        super().__init__(
            f"{algorithm} mismatch for {what}: expected {expected}, got {actual}",
            hint=hint or "the download was corrupted or the upstream file changed; "
                         "the bad copy was not kept")


class FailureKind(Label):
    """Why one URL failed; when every URL failed the same way it picks the exit code."""

    DOWNLOAD = "download"     # network, timeouts, truncation
    HTTP = "http"             # the server answered with an error status
    CHECKSUM = "checksum"     # bytes arrived but were not the right ones
    POLICY = "policy"         # refused by a rule (plain http, https->http redirect)
    UNSAFE = "unsafe"         # the content itself is hostile (a pickle that imports code)
    CONTENT = "content"       # not what the name says (an error page, not a pickle)
    DISK = "disk"             # the URL's response could not be stored (too big, disk filled)
    BUSY = "busy"             # the server said it cannot serve now (429, 5xx)


@dataclass(frozen=True)
class UrlFailure:
    """Why one URL did not yield a verified file."""

    url: str
    reason: str
    kind: FailureKind = FailureKind.DOWNLOAD


class DownloadFailedError(DensezooError, OSError):
    """Every URL of an artifact failed; lists each URL and why."""

    exit_code = EXIT_DOWNLOAD

    def __init__(self, name: str, failures: Sequence[UrlFailure]) -> None:
        self.name = name
        self.failures = list(failures)
        # The worst cause decides the exit code and the advice: a mirror that served a
        # hostile pickle while upstream is dead is an attack (9), not a network problem.
        kinds = {f.kind for f in self.failures}
        self.worst = min(kinds, key=WORST_FIRST.index, default=FailureKind.DOWNLOAD)
        self.exit_code, hint = _ALL_FAILED[self.worst]
        if self.worst is FailureKind.POLICY and all(
                "below the required" in f.reason          # the fetcher's bar refusal
                for f in self.failures if f.kind is FailureKind.POLICY):
            hint = _BAR_HINT                # not an http downgrade: nothing to allow
        lines = "; ".join(f"{f.url} -> {f.reason}" for f in self.failures) or "no URL to try"
        super().__init__(f"could not fetch {name}: every URL failed: {lines}", hint=hint)

    __str__ = DensezooError.__str__

    @property
    def headline(self) -> str:
        if len(self.failures) < 2:
            return self.message
        return (f"could not fetch {self.name}: all {len(self.failures)} URLs failed "
                f"(the worst cause: {self.worst})")

    @property
    def details(self) -> tuple[str, ...]:
        """Each URL and why it failed, one per line, when there was more than one."""
        if len(self.failures) < 2:
            return ()
        return tuple(f"{f.url} -> [{f.kind}] {f.reason}" for f in self.failures)


# Which URL failure speaks for the artifact when URLs failed for different reasons.
WORST_FIRST = (FailureKind.UNSAFE, FailureKind.CHECKSUM, FailureKind.CONTENT, FailureKind.POLICY,
               FailureKind.DISK, FailureKind.HTTP, FailureKind.BUSY, FailureKind.DOWNLOAD)

_ALL_FAILED = {
    FailureKind.DOWNLOAD: (EXIT_DOWNLOAD, "check your network or proxy, or set DENSEZOO_MIRROR "
                                          "to a mirror that has the file"),
    FailureKind.HTTP: (EXIT_DOWNLOAD, "the server refused or lacks the file (403 often means a "
                                      "wrong id/path); check the URL, or set DENSEZOO_MIRROR to "
                                      "a mirror that has it"),
    FailureKind.BUSY: (EXIT_DOWNLOAD, "the server is overloaded or down (HTTP 429/5xx): try "
                                      "again later, or set DENSEZOO_MIRROR to a mirror that "
                                      "has the file"),
    FailureKind.CHECKSUM: (EXIT_CHECKSUM, "no URL served bytes matching the expected checksum "
                                          "(a bad mirror or a changed upstream file); nothing "
                                          "was kept"),
    FailureKind.POLICY: (EXIT_POLICY, "use https URLs, or pass --allow-http / "
                                      "DENSEZOO_ALLOW_HTTP=1 for a trusted internal mirror"),
    FailureKind.CONTENT: (EXIT_DOWNLOAD, "the server sent something other than the file (an "
                                         "error page or a placeholder); nothing was kept or "
                                         "pinned"),
    FailureKind.DISK: (EXIT_STORE, "free some space, or point --cache-dir / DENSEZOO_CACHE_DIR "
                                   "at a larger disk"),
    FailureKind.UNSAFE: (EXIT_POLICY, "every copy served was refused as unsafe (kept aside in "
                                      "the cache's bad/ folder as evidence); report the source"),
}


_BAR_HINT = ("--strict / --require take a copy's bytes only when something published "
             "checks them: let upstream serve it, publish its md5/sha256 in your manifest, "
             "or lower the bar (DENSEZOO_STRICT / DENSEZOO_REQUIRE, the settings file)")


class NotCachedError(DensezooError, FileNotFoundError):
    """The artifact is not in the local store and we may not download it."""

    exit_code = EXIT_NOT_CACHED

    def __init__(self, name: str, *, hint: str | None = None) -> None:
        self.name = name
        super().__init__(f"{name} is not in the cache",
                         hint=hint or f"run `densezoo fetch {name}` first")

    __str__ = DensezooError.__str__


class StoreError(DensezooError, OSError):
    """The cache directory cannot be written or read (disk full, read-only, permissions)."""

    exit_code = EXIT_STORE

    def __init__(self, message: str, *, path: str, hint: str | None = None) -> None:
        self.path = path
        super().__init__(message, hint=hint or
                         "free some space or point --cache-dir / DENSEZOO_CACHE_DIR "
                         "at a writable directory")

    __str__ = DensezooError.__str__


class PolicyError(DensezooError):
    """Refused on purpose: strict mode, an insecure redirect, a plain-http URL."""

    exit_code = EXIT_POLICY


class PlantedLinkError(PolicyError):
    """A symlink below the store root that densezoo did not make: following it would read
    or write outside the cache (a co-tenant of a shared cache can plant one)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"refusing {path}: a symlink inside the store that densezoo did not "
                         "make (writes and reads through it would leave the cache)",
                         hint="remove it, and keep the cache writable only by its users; "
                              "densezoo never follows links below its root")


class ForeignFolderError(PolicyError):
    """A folder of the store that only this user's own decisions may live in (``imported/``,
    ``catalog/``) belongs to someone else: what it holds or gains is theirs to change."""

    def __init__(self, path: str, owner: int) -> None:
        self.path = path
        self.owner = owner
        super().__init__(f"refusing {path}: it belongs to uid {owner}, not to you, and only "
                         "your own manifests may live there",
                         hint="remove it (or use a cache of your own: --cache-dir / "
                              "DENSEZOO_CACHE_DIR)")


class WeakTrustError(PolicyError):
    """Bytes that only weaker vouchers stand behind than --strict / --require asks for."""

    def __init__(self, name: str, strength: str, bar: str, *, path: str | None = None,
                 how: str = "is cached", hint: str | None = None) -> None:
        self.name, self.strength, self.bar, self.path = name, strength, bar, path
        super().__init__(f"{name} {how} as {strength}, below the required {bar} "
                         "(--strict / --require)",
                         hint=hint or f"`densezoo info {name}` says who vouched for it; "
                              f"`densezoo fetch --force {name}` with no mirror fetches it "
                              "from its own URL")


class StrictModeError(PolicyError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"{name} has no published checksum and strict mode is on",
            hint="drop --strict / DENSEZOO_STRICT, or add a published md5 to your manifest")


class InsecureRedirectError(PolicyError):
    def __init__(self, url: str, location: str) -> None:
        self.url = url
        self.location = location
        super().__init__(f"refused redirect from https to http: {url} -> {location}")


class TransferError(DensezooError, OSError):
    """One URL failed (used inside the downloader; the API aggregates these)."""

    exit_code = EXIT_DOWNLOAD

    def __init__(self, url: str, reason: str, *, status: int | None = None,
                 retryable: bool = True, retry_after: float | None = None,
                 kind: FailureKind | None = None, unreachable: bool = False) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.kind = kind or (FailureKind.HTTP if status else FailureKind.DOWNLOAD)
        # The host cannot be reached at all (refused, unknown name, no connection): not
        # worth a retry now, and not worth another try in the same batch.
        self.unreachable = unreachable
        super().__init__(f"{url}: {reason}")

    __str__ = DensezooError.__str__


class UnsafeContentError(PolicyError):
    """Bytes refused for what they are, whatever their checksum: a pickle that imports code."""

    def __init__(self, what: str, reason: str, *, path: str | None = None,
                 moved_to: str | None = None) -> None:
        self.what = what
        self.reason = reason
        self.path = path
        self.moved_to = moved_to
        if path and not moved_to:         # found in place by a read-only command
            hint = ("left in place (this command moves nothing; `densezoo verify --scan` "
                    "moves it aside); do not load this file and report where it came from")
        else:
            kept = f"kept aside in {moved_to} as evidence; " if moved_to else ""
            hint = f"{kept}nothing was published; do not load this file and report where " \
                   "it came from"
        super().__init__(f"refused {what}: {reason}", hint=hint)


class WrongContentError(DensezooError):
    """Bytes that are not what the artifact's name says (an error page named .pkl)."""

    exit_code = EXIT_DOWNLOAD

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"refused {what}: {reason}",
                         hint="the source served something other than the file; nothing was "
                              "kept or pinned (try another mirror, or check the URL)")


class StructureMismatchError(WrongContentError):
    """A checkpoint whose tensors are not the model it is named as (another model, the
    backbone alone, v1 weights): exit 4 like a checksum, even when an md5 prefix matched."""

    exit_code = EXIT_CHECKSUM

    def __init__(self, what: str, reason: str, *, path: str | None = None) -> None:
        self.what = what
        self.reason = reason
        self.path = path
        DensezooError.__init__(
            self, f"refused {what}: {reason}",
            hint="these are other weights under this name; nothing was kept or pinned "
                 "(`densezoo identify FILE` says what they are)")


class Cancelled(BaseException):
    """Another thread was interrupted (Ctrl-C, SIGTERM): stop, keeping what was received."""


class RestrictedLoadError(UnsafeContentError):
    """A pickle the restricted loader will not build: a construct off its allow-list (an
    import, an object of a class) or a stream it cannot follow.  Nothing in it was run:
    the loader builds values itself and calls no function the file names."""

    def __init__(self, what: str, reason: str, *, position: int | None = None) -> None:
        super().__init__(what, reason)
        self.position = position
        self.hint = ("densezoo builds only numpy arrays and plain containers from a pickle, "
                     "and ran nothing from this one; do not open it with pickle.load or "
                     "torch.load, and report where it came from")
