"""Fitting a table into the terminal without ever cutting a name or a path.

The rule (issue 37): every name densezoo prints is one ``fetch``/``info`` accepts, so a
name is never shortened with ``…``; a narrow terminal gets, in this order, the shorter
accepted spelling of each name (the caller offers it), then loses the columns that are
empty in every row, then the columns it can best do without, and only then do the
remaining cells wrap (the name column never does).  Kept apart from the renderers so
that what fits is decided in one place and how a cell is emitted in another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

GAP = 2          # spaces between two columns (rich's default padding for box=None)


@dataclass(frozen=True)
class Fitted:
    """The columns kept and each row cut to them (same order)."""

    columns: list[str]
    rows: list[list[str]]

    @property
    def width(self) -> int:
        return table_width(self.columns, self.rows)


def table_width(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """Characters a row takes with every column at its widest cell (or heading)."""
    if not columns:
        return 0
    return sum(max(len(c), *(len(r[k]) for r in rows)) if rows else len(c)
               for k, c in enumerate(columns)) + GAP * (len(columns) - 1)


def _keep(fitted: Fitted, drop: str) -> Fitted:
    k = fitted.columns.index(drop)
    return Fitted(fitted.columns[:k] + fitted.columns[k + 1:],
                  [r[:k] + r[k + 1:] for r in fitted.rows])


def fit(columns: Sequence[str], rows: Sequence[Sequence[str]], width: int | None, *,
        short_rows: Sequence[Sequence[str]] | None = None,
        drop_order: Sequence[str] = (), always: Sequence[str] = ()) -> Fitted:
    """The table that fits ``width`` best under the rule above.

    ``short_rows``: the same rows with shorter accepted spellings (used only when the
    full ones do not fit); ``drop_order``: the columns to give up, least important
    first; ``always``: columns kept even when every cell is empty.  ``width`` None:
    everything is kept as given (``--wide``)."""
    fitted = Fitted(list(columns), [list(r) for r in rows])
    if width is None:
        return fitted
    for col in list(fitted.columns[1:]):
        k = fitted.columns.index(col)
        if col not in always and not any(r[k] for r in fitted.rows):
            fitted = _keep(fitted, col)
    if fitted.width > width and short_rows is not None:
        kept = [list(columns).index(c) for c in fitted.columns]
        fitted = Fitted(fitted.columns, [[r[k] for k in kept] for r in short_rows])
    for col in drop_order:
        if fitted.width <= width:
            break
        if col in fitted.columns:
            fitted = _keep(fitted, col)
    return fitted
