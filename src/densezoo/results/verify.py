"""What ``verify`` returns: per artifact, the state of its cached copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import Strength, VerifyStatus


@dataclass(frozen=True)
class VerifyEntry:
    """One artifact's cached copy: its state, how it was checked, where it went if it
    was moved aside."""

    name: str
    status: VerifyStatus
    path: str | None = None
    detail: str | None = None
    moved_to: str | None = None
    method: str | None = None      # full (re-hashed) | quick (stat memo)
    # missing because a verify or fetch moved it aside: {at, moved_to, status, reason}
    quarantined: dict[str, Any] | None = None
    strength: Strength | None = None   # who vouched for the bytes (ok and weak entries)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["state"] = d.pop("status")
        return {"name": d.pop("name"), "state": d.pop("state"), **d}


@dataclass(frozen=True)
class VerifyReport:
    """Every entry checked; ``ok`` only when all are (what CI's exit code follows)."""

    entries: tuple[VerifyEntry, ...]
    notes: tuple[str, ...] = ()    # said once with -v (e.g. a read-only cache's memo)

    @property
    def ok(self) -> bool:
        return all(e.status is VerifyStatus.OK for e in self.entries)

    def count(self, status: str) -> int:
        return sum(e.status == status for e in self.entries)

    def strengths(self) -> dict[str, int]:
        """How many files checked out (ok) at each strength, strongest first."""
        out = {str(s): sum(e.strength is s and e.status is VerifyStatus.OK
                           for e in self.entries) for s in Strength}
        return {k: v for k, v in out.items() if v}

    def with_note(self, note: str) -> "VerifyReport":
        return VerifyReport(self.entries, (*self.notes, note))

    def to_dict(self) -> dict[str, Any]:
        counts = {str(s): self.count(s) for s in VerifyStatus}
        return {"ok": self.ok, "counts": counts, "strengths": self.strengths(),
                "items": [e.to_dict() for e in self.entries],
                "notes": list(self.notes)}
