// Where the Player's playback is: from stats.player (every second while a stream is
// live), and between two of them from the stream's timing (frame k is due at
// start + (k - start_frame) / rate, on the server's CLOCK_MONOTONIC, which the page
// knows from the hello's server_ms). While it runs and is shown, each animation frame
// hands the position on; otherwise nothing runs.

import { rateOf } from "./tlmodel.js";

const STALE_MS = 2500; // no stats.player for this long: the playback is over
const LIVE = ["running", "paused", "starting"];

export class Playhead {
  // onFrame(frame | null): where to draw it (null: no playback)
  constructor(bus, onFrame) {
    this.bus = bus;
    this.onFrame = onFrame;
    this.visible = true;
    this._stream = null; // the Player's playback stream, as stats.player said
    this._at = 0; // performance.now() when it said so
    this._raf = 0;
    bus.on("event", ({ topic, body }) => {
      if (topic !== "stats.player") return;
      this._stream = (body.streams ?? []).find((s) => s.mode === "playback") ?? null;
      this._at = performance.now();
      this.update();
    });
    bus.subscribe("playhead", ["stats.player"]);
    // The status the GUI pushes every second is the clock that finds a silence.
    bus.on("status", () => this._stream && this.update());
  }

  // The live playback stream, or null.
  stream() {
    const s = this._stream;
    if (!s || !LIVE.includes(s.state) || performance.now() - this._at > STALE_MS) return null;
    return s;
  }

  frame() {
    const s = this.stream();
    if (!s) return null;
    const now = this.bus.serverNowMs();
    if (s.state !== "running" || s.start === undefined || now === null) return s.frame;
    const frame = s.start_frame + (now / 1000 - s.start) * rateOf(s.rate);
    return Math.max(s.first, Math.min(s.first + s.count - 1, Math.floor(frame)));
  }

  setVisible(shown) {
    this.visible = shown;
    this.update();
  }

  // Hand the position on now, and on each animation frame while it runs and is shown.
  update() {
    if (this._raf) return;
    const step = () => {
      this._raf = 0;
      this.onFrame(this.frame());
      if (this.visible && this.stream()?.state === "running") {
        this._raf = requestAnimationFrame(step);
      }
    };
    step();
  }
}
