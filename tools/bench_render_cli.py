"""``lumiera render`` against the ffmpeg command line alone, on renders of any length.

Run from the repository root with the project's interpreter::

    .venv/bin/python tools/bench_render_cli.py                      # 500 frames, 3 rounds
    .venv/bin/python tools/bench_render_cli.py --frames 1500        # 60 s of video
    .venv/bin/python tools/bench_render_cli.py --quick              # 250 frames, 2 rounds

The command-line part of ``tools/bench_render.py`` (the same media, session,
commands and measurements: its ``cli_run`` and ``ffmpeg_run``), without the
pipeline, playback and sound parts, so that one figure can be followed quickly
and at other lengths: two generated 1080p H.264 sources of ``--frames`` frames,
B at opacity 0.5 over A, rendered by ``lumiera render SESSION -o OUT --codec
h264`` (its own instance, start to exit) and by ``ffmpeg -filter_complex
blend=all_opacity=0.5 -c:v libx264 -preset ultrafast``, alternating (whoever
went second goes first in the next round), for ``--rounds`` rounds. Each
command's wall time, the CPU of its whole process tree (wait4) and its peak
memory (PSS of the tree, sampled) are shown; the verdict is best against
best, beside the median of the rounds' ratios.

Prints a table and, as the very last line of stdout, one JSON object. Without
ffmpeg installed the report says so and its figures are null.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from math import isnan, nan

from bench_render import (
    CommandRun,
    cli_run,
    cli_session,
    ffmpeg_run,
    make_media,
    say_command,
)
from harness import (
    ABSENT_FFMPEG,
    alternate,
    bench_context,
    bench_main,
    paired,
    parser,
    say,
    verdict,
    which_ffmpeg,
)


def _row(what: str, runs: Sequence[CommandRun]) -> str:
    best = min(runs, key=lambda r: r.seconds)
    return (
        f"{what:<16} {best.fps:7.1f} frames/s  {best.seconds:6.2f} s  CPU {best.cpu_s:6.2f} s"
        f"  peak {best.peak_mib:4.0f} MiB   rounds: " + ", ".join(f"{r.seconds:.2f}" for r in runs)
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__, "250 frames, 2 rounds")
    p.add_argument("--frames", type=int, default=500, help="frames of each source (500)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of both commands (3)")
    args = p.parse_args(argv)
    frames, rounds = (250, 2) if args.quick else (args.frames, args.rounds)
    if frames < 1 or rounds < 1:
        p.error("--frames and --rounds: at least 1")
    ffmpeg = which_ffmpeg()
    if ffmpeg is None:
        say(ABSENT_FFMPEG)
    with bench_context("lumcli-", args.quick) as ctx:
        say(f"media: 2 x {frames} frames of 1080p H.264")
        a = make_media(ctx.base / "a.mp4", frames, 1)
        b = make_media(ctx.base / "b.mp4", frames, 2)
        session = cli_session(ctx, a, b, frames)

        def lumiera(k: int) -> CommandRun | None:
            run = cli_run(ctx, session, frames, k)
            say_command("lumiera render", k, rounds, run)
            return run

        def ffmpeg_line(k: int) -> CommandRun | None:
            assert ffmpeg is not None
            run = ffmpeg_run(ctx, ffmpeg, a, b, k)
            say_command("ffmpeg", k, rounds, run)
            return run

        variants = {"lumiera": lumiera} | ({"ffmpeg": ffmpeg_line} if ffmpeg else {})
        runs = alternate(variants, rounds)  # L F, F L, ...: neither always goes first
        problems = list(ctx.problems)
    # The rounds where both commands completed (a failed run pairs with nothing).
    rounds_run = zip(runs["lumiera"], runs.get("ffmpeg", []), strict=False)
    pairs = [(c, f) for c, f in rounds_run if c is not None and f is not None]
    cli = [r for r in runs["lumiera"] if r is not None]
    ff = [r for r in runs.get("ffmpeg", []) if r is not None]
    if not cli:
        print("lumiera render: no run completed\n" + "\n".join(problems))
        return 1
    print(f"{frames} frames of 1080p, 2 tracks -> H.264 ultrafast; {rounds} rounds, alternating")
    print(_row("lumiera render", cli))
    print(_row("ffmpeg", ff) if ff else ABSENT_FFMPEG)
    figures: dict[str, float | None] = {
        "frames": frames,
        "render_cli_fps": round(max(r.fps for r in cli), 2),
        "ffmpeg_fps": round(max(r.fps for r in ff), 2) if ff else None,
        "render_cpu_s": round(min(cli, key=lambda r: r.seconds).cpu_s, 2),
        "ffmpeg_cpu_s": round(min(ff, key=lambda r: r.seconds).cpu_s, 2) if ff else None,
        "render_peak_mib": round(max(r.peak_mib for r in cli), 1),
    }
    if ff:
        best = figures["render_cli_fps"] / figures["ffmpeg_fps"]  # type: ignore[operator]
        ratio = paired([c.fps for c, _ in pairs], [f.fps for _, f in pairs]) if pairs else nan
        print(
            f"lumiera render / ffmpeg: {best:.3f} best vs best (aim >= 1: {verdict(best, 1)});"
            f" median of the rounds' ratios {ratio:.3f}"
        )
        figures["ratio"] = round(best, 3)
        figures["ratio_median"] = None if isnan(ratio) else round(ratio, 3)  # nan: no pair
    for line in problems:
        print(f"problem: {line}")
    print(json.dumps(figures))
    return 1 if problems else 0


if __name__ == "__main__":
    bench_main(main)
