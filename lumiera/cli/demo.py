"""``lumiera demo``: the whole system, headless, rendering a generated clip.

Generates two short clips with sound and a music file with PyAV
(:mod:`lumiera.vault.testsrc`) into DIR
(default ``./lumiera-demo``), then runs ``lumiera up DIR/demo.lumiera
--headless --script`` the demo script (:mod:`lumiera.stage.demo_script`),
which builds a session through the script API (two video tracks and an audio
track, a crossfade, an overlay with opacity, music under it) and renders it to
``DIR/demo.mp4``. The supervisor runs in this
process, so everything it and the subsystems say is shown; the script's end
ends the application, and this command exits with its code.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from lumiera.cli import up
from lumiera.stage import demo_script
from lumiera.vault.testsrc import write_clip, write_tone

CLIP_FRAMES = 100
DEMO_FRAMES = 120  # the edit's length (demo_script): the music runs as long


def main(args: argparse.Namespace) -> int:
    where = Path(args.dir).absolute()
    where.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    write_clip(where / "a.mp4", CLIP_FRAMES, hue=0, tone=440.0)
    write_clip(where / "b.mp4", CLIP_FRAMES, hue=3, tone=660.0)
    write_tone(where / "music.wav", DEMO_FRAMES / 25, 220.0)  # as long as the edit
    print(
        f"demo: generated {where / 'a.mp4'} and {where / 'b.mp4'} ({CLIP_FRAMES} frames "
        f"each, with a tone) and {where / 'music.wav'} in {time.monotonic() - started:.2f} s"
    )
    session = where / "demo.lumiera"
    for stale in (session, where / "demo.mp4"):
        stale.unlink(missing_ok=True)  # a fresh session each run
    os.environ[demo_script.ENV_DIR] = str(where)
    up_args = argparse.Namespace(
        session=str(session),
        headless=True,
        script=[demo_script.__file__],
        port=None,
        join=None,
        defs=args.defs,
        config=args.config,
        debug=None,
        instance=args.instance,
        runtime_dir=args.runtime_dir,
    )
    code = up.main(up_args)
    if code == 0:
        print(f"demo: done; play it with any player: {where / 'demo.mp4'}")
    return code
