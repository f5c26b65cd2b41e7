"""A benchmark's report: the machine, an aligned table, the problems, the JSON line."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Mapping, Sequence


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """The first row is the header; the first column left-aligned, the middle ones
    right-aligned, the last (free text) as it is."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for j, r in enumerate(rows):
        cells = [
            r[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(r[1:-1], widths[1:-1], strict=True)),
        ]
        out.append("  ".join([*cells, r[-1]]).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


class Table:
    """A report's table, built row by row: ``add(figure, value, ..., how=...)``."""

    def __init__(self, *header: str) -> None:
        self.rows: list[tuple[str, ...]] = [header]

    def add(self, *cells: str, how: str = "") -> None:
        """A row; cells left out (before the last column, ``how``) are empty."""
        free = len(self.rows[0]) - 1 - len(cells)
        if free < 0:
            raise ValueError(f"{len(cells)} cells for {len(self.rows[0]) - 1} columns")
        self.rows.append((*cells, *[""] * free, how))

    def lines(self) -> list[str]:
        return table(self.rows)


def header(title: str, versions: str) -> list[str]:
    """The first lines of a report: what ran, on what machine, with which interpreter."""
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return [
        title,
        f"machine: {platform.machine()}, nproc {len(os.sched_getaffinity(0))} "
        f"(cpu_count {os.cpu_count()}), load avg {load}, {platform.platform()}",
        f"python {platform.python_version()} ({sys.executable}); {versions}",
    ]


def load_note(load_at_start: float) -> list[str]:
    """A warning line if the machine was busy before the start."""
    if load_at_start <= 0.5:
        return []
    return [
        f"note: load average {load_at_start:.2f} before the start: other processes"
        " compete for the cores, so these figures are noisy"
    ]


def problem_lines(problems: Sequence[str]) -> list[str]:
    """The end of a report: what went wrong, if anything."""
    return ["", "PROBLEMS:", *(f"  - {p}" for p in problems)] if problems else []


def json_line(figures: Mapping[str, float | int], digits: int) -> str:
    """The figures as one JSON object: floats rounded, NaN as null, ints as they are."""

    def value(v: float | int) -> float | int | None:
        if isinstance(v, int):
            return v
        return None if math.isnan(v) else round(v, digits)

    return json.dumps({k: value(v) for k, v in figures.items()})


def finish(
    lines: Sequence[str],
    rows: Table,
    problems: Sequence[str],
    figures: Mapping[str, float | int],
    digits: int,
) -> int:
    """Print the report (``lines``, the table, the problems), then the JSON line last.

    Returns the exit status: 1 if there were problems.
    """
    print("\n".join([*lines, "", *rows.lines(), *problem_lines(problems)]), flush=True)
    print(json_line(figures, digits), flush=True)
    return 1 if problems else 0
