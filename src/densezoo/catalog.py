"""All loaded manifests as one catalog: name lookup, filters and dependency closure.

Later manifests extend or override earlier ones by name, so a user's file can
add entries or replace a shipped entry (a new mirror, a published md5).  Manifests
saved by ``import`` never do: an imported entry claiming any key a loaded entry
answers to (``claims``) is left out.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence

from .errors import AmbiguousArtifactError, ManifestError, UnknownArtifactError
from .compiled import load_manifest, owned_privately
from .manifest import Artifact, Manifest, store_key
from .urls import REDACTED, redact, url_identity


def default_manifest_paths() -> list[Path]:
    """The manifests shipped in the wheel (``densezoo/manifests/*.yaml``).

    A plain path beside this module, not ``importlib.resources`` (whose import alone
    cost 20 ms of every command's start-up); densezoo is never run from a zip.
    """
    found = sorted((Path(__file__).resolve().parent / "manifests").glob("*.yaml"))
    if not found:
        # A source checkout run without installing: the manifests sit at the repo top.
        here = Path(__file__).resolve().parents[2] / "manifests"
        found = sorted(here.glob("*.yaml"))
    return found


def claims(art: Artifact) -> dict[tuple[str, str], str]:
    """Every key a lookup can reach ``art`` by, each with the words that say which:
    a name users type (its name, aliases, file name and config path, as ``get`` tries
    them), each URL it is known under (url, mirrors, legacy URLs, as ``UrlIndex`` finds
    them), its store file, and its config's file name (``trained_with`` falls back to
    it).  Two entries sharing a key means one of them wins that lookup."""
    out: dict[tuple[str, str], str] = {}
    for n in (art.name, *art.aliases, art.file_name, *_config_keys(art.config)):
        out.setdefault(("name", n.lower()), f"the name {n!r}")
    for u in (art.url, *art.mirrors, *art.legacy_urls):
        out.setdefault(("url", url_identity(u)), f"the URL {redact(u)}")
    out[("store", "/".join(store_key(art)))] = f"the store file {'/'.join(store_key(art))}"
    if art.config:
        base = art.config.lower().rsplit("/", 1)[-1]
        out[("config", base)] = f"the config file name {base!r}"
    return out


def clashes(art: Artifact, taken: dict[tuple[str, str], Artifact]) -> list[tuple[str, Artifact]]:
    """Which of ``art``'s keys another entry already answers to: (what, that entry)."""
    return [(what, taken[key]) for key, what in claims(art).items()
            if key in taken and taken[key] is not art]


def claim_index(arts: Iterable[Artifact]) -> dict[tuple[str, str], Artifact]:
    """Every key of these entries -> the first entry answering to it."""
    index: dict[tuple[str, str], Artifact] = {}
    for a in arts:
        for key in claims(a):
            index.setdefault(key, a)
    return index


def _imported(folder: Path, loaded: list[Manifest], compiled: Path | None) -> list[Manifest]:
    """Manifests ``densezoo import`` saved, each cut to the entries that claim no key a
    loaded manifest's entry (or an earlier imported one) answers to -- name, alias, file
    name, any URL, store file or config (``claims``): an imported manifest never shadows
    the shipped ones or your own, whatever an older densezoo let it save.

    Only files this user owns and nobody else can write count (a shared store is not a
    trust root), and one that no longer loads is left out rather than breaking every
    command: ``import`` validated it when it saved it.
    """
    try:
        files = sorted(p for p in folder.glob("*.yaml") if owned_privately(p))
    except OSError:
        return []
    if not files:
        return []
    taken = claim_index(a for m in loaded for a in m.artifacts)
    out = []
    for f in files:
        try:
            m = load_manifest(f, compiled)
        except ManifestError:
            continue
        # An entry whose URL was redacted (it carried credentials when bundled) names no
        # fetchable file: its store record still lets `verify` check the imported copy.
        arts = []
        for a in m.artifacts:
            if REDACTED not in a.url and not clashes(a, taken):
                arts.append(a)
                taken.update({k: a for k in claims(a) if k not in taken})
        if arts:
            out.append(replace(m, artifacts=tuple(arts)))
    return out


def _config_keys(config: str | None) -> tuple[str, ...]:
    if not config:
        return ()
    c = config.lower()
    short = c[len("configs/"):] if c.startswith("configs/") else c
    return (c, short, short[:-5] if short.endswith(".yaml") else short)


@dataclass(frozen=True)
class Catalog:
    """Every loaded manifest's entries, looked up by name, alias or pattern."""

    artifacts: tuple[Artifact, ...]
    manifests: tuple[Manifest, ...]
    # The shipped manifests among ``manifests`` (``shadowed``: which entries yours hide).
    shipped: tuple[Manifest, ...] = ()

    @classmethod
    def load(cls, paths: Sequence[str | Path] = (), *, defaults: bool = True,
             compiled: Path | None = None, imported: Path | None = None) -> "Catalog":
        """Load manifests in order; ``compiled``: a cache folder for pre-parsed manifests;
        ``imported``: the folder where ``import`` saved bundles' manifests."""
        base = [load_manifest(p, compiled) for p in default_manifest_paths()] if defaults else []
        mine = [load_manifest(Path(p), compiled) for p in paths]
        extra = _imported(imported, [*base, *mine], compiled) if imported else []
        if extra:
            try:
                return cls.from_manifests([*base, *extra, *mine], shipped=base)
            except ManifestError:
                pass            # an imported manifest that no longer fits: leave it out
        return cls.from_manifests([*base, *mine], shipped=base)

    def shadowed(self, art: Artifact) -> list[Artifact]:
        """The shipped entries an entry of your own manifest hides: the one it replaced by
        name, and any answering to a key it claims (a URL, file name or config;
        ``claims``), whose lookup now finds yours.  Imported entries never shadow
        (``_imported`` cuts them), nor do shipped ones each other."""
        if not self.shipped or id(art) in self._shipped_ids:
            return []
        out: list[Artifact] = []
        for key in claims(art):
            for b in self._shipped_claims.get(key, ()):
                if b is not art and not any(b is o for o in out):
                    out.append(b)
        return out

    @cached_property
    def _shipped_ids(self) -> frozenset[int]:
        return frozenset(id(a) for m in self.shipped for a in m.artifacts)

    @cached_property
    def _shipped_claims(self) -> dict[tuple[str, str], list[Artifact]]:
        """Every key of every shipped entry (replaced ones too) -> those entries."""
        index: dict[tuple[str, str], list[Artifact]] = {}
        for m in self.shipped:
            for a in m.artifacts:
                for key in claims(a):
                    index.setdefault(key, []).append(a)
        return index

    @cached_property
    def _names(self) -> dict[str, tuple[Artifact, ...]]:
        """Lower-cased names and aliases -> the artifacts answering to them."""
        index: dict[str, list[Artifact]] = {}
        for a in self.artifacts:
            for key in {a.name.lower(), *(x.lower() for x in a.aliases)}:
                index.setdefault(key, []).append(a)
        return {k: tuple(v) for k, v in index.items()}

    @classmethod
    def from_manifests(cls, manifests: Iterable[Manifest], *,
                       shipped: Iterable[Manifest] = ()) -> "Catalog":
        """``shipped``: which of ``manifests`` came with densezoo (``shadowed``)."""
        manifests = tuple(manifests)
        by_name: dict[str, Artifact] = {}
        for m in manifests:
            for art in m.artifacts:
                by_name.pop(art.name.lower(), None)      # override keeps the newest position
                by_name[art.name.lower()] = art
        catalog = cls(tuple(by_name.values()), manifests, tuple(shipped))
        catalog._check_requires()
        catalog._check_slots()
        return catalog

    # -- lookup ---------------------------------------------------------------------------

    def trained_with(self, config_path: str | Path) -> Artifact | None:
        """The model an entry says was trained with this config -- the
        ``get_checkpoint_url`` detectron2 lacks for DensePose.  A path matches an entry's
        ``config:`` on whole path components from the end (``.../configs/cse/x.yaml`` is
        the CSE model, not the chart-based ``configs/x.yaml``); a bare file name matches
        only when exactly one model has it."""
        p = "/" + Path(config_path).as_posix().lower().lstrip("/")
        models = [a for a in self.artifacts if a.kind == "model" and a.config]
        hits = [a for a in models if p.endswith("/" + a.config.lower().lstrip("/"))]
        if not hits:
            base = p.rsplit("/", 1)[-1]
            hits = [a for a in models if a.config.lower().rsplit("/", 1)[-1] == base]
            if len(hits) != 1:
                return None
        # The longest config path is the most specific; a deprecated twin loses a tie.
        return max(hits, key=lambda a: (len(a.config), not a.deprecated))

    def matching(self, pattern: str) -> list[Artifact]:
        """Every artifact whose name, alias or file name matches a shell-style pattern
        (``cse_*``; case-insensitive; ``zoo:pattern`` narrows to one zoo), in manifest
        order; none is an ``UnknownArtifactError`` (a pattern that selects nothing is a
        typo, not an empty request)."""
        low = pattern.strip().lower()
        zoo = None
        if ":" in low:
            zoo, _, low = low.partition(":")
        hits = [a for a in self.artifacts if (zoo is None or a.zoo.lower() == zoo)
                and any(fnmatch.fnmatchcase(n.lower(), low)
                        for n in (a.name, a.file_name, *a.aliases))]
        if not hits:
            raise UnknownArtifactError(pattern, hint="no artifact matches this pattern; "
                                       "`densezoo list TEXT` searches names")
        return hits

    def get(self, name: str) -> Artifact:
        """Resolve a name; case-insensitive, ``zoo:name`` narrows to one zoo.

        Tried in order: the entry's name, an alias (short form), the file name, the
        config path (``cse/densepose_rcnn_R_50_FPN_s1x``).  An exact entry name wins
        over another entry's alias or file name (``densepose_posetrack_train2017`` is
        densepose-v1's entry, though a detectron2 entry has it as an alias): every name
        ``list`` prints must be one ``info`` accepts.  A query that matches several
        entries at the first tier that matches at all is ambiguous: the user chooses,
        densezoo never guesses.
        """
        query = name.strip()
        low = query.lower()
        zoo = None
        if ":" in low and not low.startswith(("http:", "https:")):
            zoo, _, low = low.partition(":")
        named = self._names.get(low, ())
        if zoo is None and len(named) == 1:
            return named[0]                     # the common case, without a scan
        pool = [a for a in self.artifacts if zoo is None or a.zoo.lower() == zoo]
        for matcher in (lambda a: a.name.lower() == low,
                        lambda a: low in (x.lower() for x in a.aliases),
                        lambda a: a.file_name.lower() == low,
                        lambda a: low in _config_keys(a.config)):
            hits = [a for a in pool if matcher(a)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise AmbiguousArtifactError(query, [f"{a.zoo}:{a.name}" for a in hits])
        words = {a.name.lower(): a.name for a in pool}
        for a in pool:
            for alias in a.aliases:
                words.setdefault(alias.lower(), alias)
        import difflib            # only for a name that is not in the catalog

        close = difflib.get_close_matches(low, list(words), n=5, cutoff=0.6)
        if not close:
            close = [k for k in words if low and low in k][:5]
        raise UnknownArtifactError(query, [words[c] for c in close])

    def shortest_name(self, art: Artifact) -> str:
        """The shortest spelling (name or alias) that ``get`` resolves to ``art`` and to
        nothing else: what a narrow ``list`` prints (an alias another entry's name wins
        over, or two entries share, is skipped)."""
        for alias in sorted(art.aliases, key=len):
            if len(alias) >= len(art.name):
                break
            try:
                if self.get(alias) is art:
                    return alias
            except (UnknownArtifactError, AmbiguousArtifactError):
                continue
        return art.name

    def select(self, *, kind: str | None = None, zoo: str | None = None,
               text: str | None = None) -> list[Artifact]:
        out = list(self.artifacts)
        if kind:
            out = [a for a in out if a.kind.lower() == kind.lower()]
        if zoo:
            out = [a for a in out if a.zoo.lower() == zoo.lower()]
        if text and any(c in text for c in "*?["):
            # A shell-style pattern selects what `fetch PATTERN` would (name, alias or
            # file name), so `list 'ResNet*'` previews `fetch 'ResNet*'`.
            t = text.lower()
            out = [a for a in out if any(fnmatch.fnmatchcase(n.lower(), t)
                                         for n in (a.name, a.file_name, *a.aliases))]
        elif text:
            t = text.lower()
            out = [a for a in out if t in a.name.lower() or t in a.file_name.lower()
                   or t in (a.description or "").lower()
                   or any(t in x.lower() for x in a.aliases)]
        return out

    def kinds(self) -> list[str]:
        return sorted({a.kind for a in self.artifacts})

    def check_filters(self, *, kind: str | None = None, zoo: str | None = None) -> None:
        """A filter value no entry has is a typo, not an empty answer: UsageError (exit 2)
        with the close matches, as names get."""
        from .errors import UsageError

        for flag, value, known in (("kind", kind, self.kinds()), ("zoo", zoo, self.zoos())):
            if value is None or value.lower() in (k.lower() for k in known):
                continue
            import difflib

            close = difflib.get_close_matches(value.lower(), [k.lower() for k in known], n=3,
                                              cutoff=0.5)
            raise UsageError(f"no {flag} {value!r}" + (f"; did you mean: {', '.join(close)}"
                                                        if close else ""),
                             hint=f"{flag}s: {', '.join(known)}")

    def zoos(self) -> list[str]:
        return sorted({a.zoo for a in self.artifacts})

    # -- dependencies ---------------------------------------------------------------------

    def closure(self, artifacts: Iterable[Artifact]) -> list[Artifact]:
        """The artifacts plus everything they require, dependencies first, each once.

        Walked with an explicit stack: a 2000-deep ``requires`` chain is data, not a
        reason for a RecursionError.
        """
        order: list[Artifact] = []
        seen: set[str] = set()
        for root in artifacts:
            if root.name in seen:
                continue
            seen.add(root.name)
            stack = [(root, iter(root.requires))]
            while stack:
                art, deps = stack[-1]
                for dep in deps:
                    d = self._require(art, dep)
                    if d.name not in seen:
                        seen.add(d.name)
                        stack.append((d, iter(d.requires)))
                        break
                else:
                    order.append(art)
                    stack.pop()
        return order

    def _require(self, owner: Artifact, dep: str) -> Artifact:
        try:
            return self.get(dep)
        except (UnknownArtifactError, AmbiguousArtifactError):
            raise ManifestError(owner.source, f"requires {dep!r}, which no loaded manifest "
                                              "defines uniquely", entry=owner.name) from None

    @cached_property
    def _slots(self) -> dict[tuple[str, ...], tuple[Artifact, ...]]:
        """Artifacts by the store file they are (``layout.store_key``)."""
        groups: dict[tuple[str, ...], list[Artifact]] = {}
        for art in self.artifacts:
            groups.setdefault(store_key(art), []).append(art)
        return {k: tuple(v) for k, v in groups.items()}

    def slot_mates(self, art: Artifact) -> list[Artifact]:
        """The other entries that share ``art``'s store file."""
        return [a for a in self._slots.get(store_key(art), ()) if a is not art]

    def _check_slots(self) -> None:
        """Two entries that would share one store file must not publish different bytes:
        fetching one would replace (or quarantine) the other's verified copy."""
        for other, *rest in self._slots.values():
            for art in rest:
                self._check_slot_pair(art, other)

    @staticmethod
    def _check_slot_pair(art: Artifact, other: Artifact) -> None:
        for field in ("size", "md5", "sha256"):
            a, b = getattr(art, field), getattr(other, field)
            if a is not None and b is not None and a != b:
                raise ManifestError(art.source, f"shares its store file with "
                                    f"{other.name!r} ({other.source}) but publishes a "
                                    f"different {field}", entry=art.name,
                                    hint="give one of them its own `filename:`, or fix "
                                         "the checksum")
        prefixes = [p for p in (art.md5_prefix, other.md5_prefix, art.md5, other.md5) if p]
        if any(not (x.startswith(y) or y.startswith(x)) for x in prefixes for y in prefixes):
            raise ManifestError(art.source, f"shares its store file with {other.name!r} "
                                f"({other.source}) but their md5 values disagree",
                                entry=art.name, hint="give one of them its own `filename:`")

    def _check_requires(self) -> None:
        """Every ``requires`` names one loaded artifact, and there is no cycle (iteratively)."""
        state: dict[str, int] = {}     # 1 = on the current path, 2 = done
        for root in self.artifacts:
            if state.get(root.name) == 2:
                continue
            state[root.name] = 1
            path = [root.name]
            stack = [(root, iter(root.requires))]
            while stack:
                art, deps = stack[-1]
                for dep in deps:
                    d = self._require(art, dep)
                    mark = state.get(d.name)
                    if mark == 1:
                        cycle = " -> ".join(path[path.index(d.name):] + [d.name])
                        raise ManifestError(d.source, f"dependency cycle: {cycle}", entry=d.name)
                    if mark is None:
                        state[d.name] = 1
                        path.append(d.name)
                        stack.append((d, iter(d.requires)))
                        break
                else:
                    state[art.name] = 2
                    path.pop()
                    stack.pop()


def unique(items: list) -> list:
    """Artifacts (or names) in order, each once."""
    seen, out = set(), []
    for x in items:
        key = x.name if isinstance(x, Artifact) else x
        if key not in seen:
            seen.add(key)
            out.append(x)
    return out
