"""Runs of named variants in alternation, and the statistics over them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")


def median(data: Sequence[float]) -> float:
    """The median, or NaN for no data (reports print it as such)."""
    return statistics.median(data) if data else float("nan")


def pct(data: Sequence[float], p: int) -> float:
    """The p-th percentile (inclusive method: within the observed range); NaN for no data."""
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    return statistics.quantiles(data, n=100, method="inclusive")[p - 1]


def paired(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over the rounds of a / b, the two runs of a round adjoining in time."""
    return median([x / y for x, y in zip(a, b, strict=True)])


def verdict(value: float, aim: float, *, below: bool = False) -> str:
    """``pass`` if ``value`` is at least ``aim`` (or, ``below``, under it), else ``MISS``."""
    if math.isnan(value):
        return "n/a"
    return "pass" if (value < aim if below else value >= aim) else "MISS"


def turns(names: Sequence[T], rounds: int, *, mirror: bool = True) -> Iterator[tuple[int, T]]:
    """(round, name) in the order to run them: A B, B A, A B ... (``mirror``) or A B, A B ..."""
    for r in range(rounds):
        yield from ((r, n) for n in (names[::-1] if mirror and r % 2 else names))


def alternate(
    variants: Mapping[str, Callable[[int], T]], rounds: int, *, mirror: bool = True
) -> dict[str, list[T]]:
    """Run each variant ``rounds`` times in :func:`turns`; its results by name, in round order.

    A variant is called with the round number; it says its own progress.
    """
    out: dict[str, list[T]] = {name: [] for name in variants}
    for r, name in turns(list(variants), rounds, mirror=mirror):
        out[name].append(variants[name](r))
    return out
