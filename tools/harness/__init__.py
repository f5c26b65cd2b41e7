"""What the benchmarks in tools/ share, so that each script is its measurement alone.

A benchmark is run from the repository root as ``python tools/bench_x.py``;
the script's own directory is then first on ``sys.path``, so ``import
harness`` finds this package. It gives:

* runs: named variants run in alternation (A B, B A, ... or A B, A B, ...), so
  drift of the machine hits each alike; medians, percentiles, paired ratios
  (:mod:`.runs`);
* processes: CPU seconds and minor page faults of a pid, CPU seconds and
  resident memory of a process tree (a pid and its descendants, from /proc)
  and the peak of it, sampled in a thread, also per process (RSS, PSS, VmHWM);
  the CPU other processes used meanwhile (:mod:`.procs`); helper processes
  that speak in lines (:mod:`.child`);
* commands run to their end, timed, or measured as a whole process tree (wait4
  rusage for its CPU, the sampled tree for its memory), and the ffmpeg command
  line of a 2-track blend render (:mod:`.commands`);
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
from .commands import (
    ABSENT_FFMPEG,
    RENDERED,
    Done,
    Measured,
    blend_filter,
    ffmpeg_blend,
    measure_command,
    run_command,
    stop,
    which_ffmpeg,
)
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
    Proc,
    Span,
    TreeSampler,
    Usage,
    command_name,
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
    "ABSENT_FFMPEG",
    "RENDERED",
    "BenchContext",
    "Child",
    "Cpu",
    "Done",
    "Measured",
    "Media",
    "PeakRss",
    "Pixels",
    "Proc",
    "Span",
    "Table",
    "TreeSampler",
    "Usage",
    "alternate",
    "bench_context",
    "bench_instance",
    "bench_main",
    "blend_filter",
    "command_name",
    "cpu_s",
    "ffmpeg_blend",
    "finish",
    "header",
    "json_line",
    "load_note",
    "measure_command",
    "median",
    "minor_faults",
    "paired",
    "parser",
    "pct",
    "plane",
    "problem_lines",
    "raise_interrupt",
    "run_command",
    "say",
    "stop",
    "table",
    "tree",
    "tree_cpu_s",
    "tree_rss",
    "turns",
    "verdict",
    "which_ffmpeg",
    "write_h264",
]
