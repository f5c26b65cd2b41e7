"""What the benchmarks in tools/ share, so that each script is its measurement alone.

A benchmark is run from the repository root as ``python tools/bench_x.py``;
the script's own directory is then first on ``sys.path``, so ``import
harness`` finds this package. It gives:

* runs: named variants run in alternation (A B, B A, ... or A B, A B, ...), so
  drift of the machine hits each alike; medians, percentiles, paired ratios
  (:mod:`.runs`);
* processes: CPU seconds and minor page faults of a pid, CPU seconds and
  resident memory of a process tree (a pid and its descendants, from /proc)
  and the peak of it, sampled in a thread; the CPU other processes used
  meanwhile (:mod:`.procs`); helper processes that speak in lines (:mod:`.child`);
* a bench's context: a temporary directory (removed at the end), instances
  started there and checked for leftovers, the problems found, SIGTERM and
  Ctrl-C ending it in order (exit 130) (:mod:`.context`);
* the report: the machine, an aligned table, the problems, and as the very
  last line of stdout one JSON object with the headline figures
  (:mod:`.report`). Progress goes to stderr (:func:`say`);
* generated H.264 media (:mod:`.media`).
"""

from __future__ import annotations

from .child import Child
from .context import (
    BenchContext,
    bench_context,
    bench_instance,
    bench_main,
    parser,
    raise_interrupt,
    say,
)
from .media import Media, Pixels, plane, write_h264
from .procs import (
    Cpu,
    PeakRss,
    Span,
    Usage,
    cpu_s,
    minor_faults,
    tree,
    tree_cpu_s,
    tree_rss,
)
from .report import (
    Table,
    finish,
    header,
    json_line,
    load_note,
    problem_lines,
    table,
)
from .runs import alternate, median, paired, pct, turns, verdict

__all__ = [
    "BenchContext",
    "Child",
    "Cpu",
    "Media",
    "PeakRss",
    "Pixels",
    "Span",
    "Table",
    "Usage",
    "alternate",
    "bench_context",
    "bench_instance",
    "bench_main",
    "cpu_s",
    "finish",
    "header",
    "json_line",
    "load_note",
    "median",
    "minor_faults",
    "paired",
    "parser",
    "pct",
    "plane",
    "problem_lines",
    "raise_interrupt",
    "say",
    "table",
    "tree",
    "tree_cpu_s",
    "tree_rss",
    "turns",
    "verdict",
    "write_h264",
]
