"""The demo's script: build a small session through the script API and render it.

Run by ``lumiera demo`` as ``lumiera up DIR/demo.lumiera --headless --script``
this file; ``LUMIERA_DEMO_DIR`` names the directory with the two generated
clips (``a.mp4``, ``b.mp4``: pictures and a tone each) and the music
(``music.wav``), where ``demo.mp4`` is written.

The timeline (25 fps, 48 kHz stereo): on V1, clip a (frames 0-59) then clip b
(its frames 20-79) from frame 60, cross-faded over the 10 frames before the
cut (picture dissolve, equal-power sound); on V2, a's frames 60-99 over frames
40-79 at opacity 0.5, so the overlay spans the crossfade; on A1, the music at
-12 dB under everything.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from lumiera import api

ENV_DIR = "LUMIERA_DEMO_DIR"


def main() -> None:
    where = Path(os.environ[ENV_DIR])
    with api.app() as app:
        s = app.session
        a, b = s.add_media(where / "a.mp4"), s.add_media(where / "b.mp4")
        music = s.add_media(where / "music.wav")
        v1, v2 = s.add_track("V1"), s.add_track("V2")
        a1 = s.add_track("A1", kind="audio")
        s.set_output(width=640, height=360, rate="25", audio_rate=48000, audio_layout="stereo")
        first = s.add_clip(a, v1, position=0, source_in=0, source_out=60)
        second = s.add_clip(b, v1, position=60, source_in=20, source_out=80)  # the cut
        s.add_transition(first, second, 10, curve="equal_power")  # b from frame 50, faded in
        s.add_clip(a, v2, position=40, source_in=60, source_out=100, opacity=0.5)  # the overlay
        s.add_clip(music, a1, position=0, gain_db=-12.0)
        timeline = s.timeline()
        print(
            f"demo: session of {len(timeline.clips)} clips on 3 tracks, "
            f"{len(timeline.transitions)} crossfade; rendering"
        )

        def progress(info: dict[str, Any]) -> None:
            print(f"demo: frame {info['frame']}/{info['count']}, {info['fps']:.1f} fps")

        started = time.monotonic()
        done = app.render(where / "demo.mp4", codec="h264", progress=progress, timeout=600)
        seconds = time.monotonic() - started
    print(
        f"demo: rendered {done['frames']} frames (640x360, H.264) to {done['output']} "
        f"in {seconds:.2f} s: {done['frames'] / seconds:.1f} fps"
    )


if __name__ == "__main__":
    main()
