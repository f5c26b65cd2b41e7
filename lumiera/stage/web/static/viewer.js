// The live viewer: the Player's viewer ring, shown on a canvas.
//
// The GUI process reads the ring, encodes each frame as JPEG and sends it as a binary
// UI-Bus frame: FRAME_HEADER (int64 frame number, float64 the ring's publish time in
// the server's CLOCK_MONOTONIC seconds, little-endian) then the JPEG. It sends the next
// picture only once this page acked the last one (viewer_ack), latest frame wins: so
// this page draws each picture, then acks it, and never builds a queue.
//
//   const viewer = mountViewer(root, bus);  // canvas, play/pause (Space), stop, frame
//   viewer.setVisible(false);              // viewer off: the server stops sending
//
// window.lumieraViewer holds what the tests and the benchmark read: drawn (pictures
// drawn), frame (the last drawn), frames (those drawn, newest last) and beside each its
// latency (ms from the ring's publish to the draw, on the server's clock via the clock
// sync) and arrival (ms from the publish to the picture's arrival in the page), clock ({offsetMs, rttMs}), server (the server's counts: sent, dropped),
// received, skipped (pictures replaced before they were drawn), decodeErrors, and sound:
// {received, played, late (came after its time: not played), muted, frames (the frame
// numbers of the sound received, newest last), dues (beside each: its due time, s)}.
//
// Sound: a playback with sound also sends every frame's sound as a binary frame:
// SOUND_HEADER (int64 frame, float64 its due time in the server's CLOCK_MONOTONIC
// seconds, "PCM1", uint32 rate, uint16 channels, 2 bytes pad) then int16 interleaved
// PCM; told from a picture by "PCM1" where a JPEG begins. It is played with WebAudio,
// each frame scheduled on the AudioContext's clock at its due time + SOUND_LATENCY_S
// (mapped through the clock sync), back to back while it keeps within SOUND_SLACK_S of
// that, so the sound is gapless and stays with the pictures, which are drawn as they
// come (a few ms after their due time). 60 ms: enough for the websocket's and the
// event loop's jitter on one machine; sound behind the picture by up to ~100 ms is
// not noticed (ITU-R BT.1359), ahead of it by 45 ms is. Muted until the Sound button
// is pressed (a browser starts an AudioContext only on a gesture); it mutes again.

import { FRAME_HEADER_BYTES } from "./uibus.js";

const CLOCK_SAMPLES = 8; // clock round trips at each connect; the quickest one counts
const LATENCIES_KEPT = 20000; // the newest ones (13 minutes at 25 fps)
const STATS_SILENT_MS = 3000; // stats.player comes every second while a stream is live
const STYLE_ID = "lumiera-viewer-style";
const SOUND_HEADER_BYTES = 28;
const SOUND_TAG = 0x314d4350; // "PCM1", read as a little-endian uint32
const SOUND_LATENCY_S = 0.06; // a frame of sound plays this long after its due time
const SOUND_SLACK_S = 0.03; // further off than this from back to back: scheduled anew
const SOUND_KEPT = 2000; // frame numbers of sound kept in window.lumieraViewer.sound

const STYLE = `
.lv { display: flex; flex-direction: column; gap: 6px; }
.lv-screen { background: #000; display: flex; justify-content: center; align-items: center;
  aspect-ratio: 16 / 9; max-height: 52vh; width: 100%; border: 1px solid var(--line, #333); }
.lv-screen canvas { width: 100%; height: 100%; object-fit: contain; display: block; }
.lv-bar { display: flex; align-items: center; gap: 8px; font-size: 13px; }
.lv-bar button { min-width: 72px; }
.lv-frame { font-variant-numeric: tabular-nums; min-width: 7em; }
.lv-stats { color: var(--dim, #888); font-variant-numeric: tabular-nums; }
.lv-error { color: var(--err, #e5534b); }
`;

// [frame number, publish time (s)] of a picture.
export function pictureHeader(buffer) {
  const view = new DataView(buffer, 0, FRAME_HEADER_BYTES);
  return [Number(view.getBigInt64(0, true)), view.getFloat64(8, true)];
}

function addStyle() {
  if (document.getElementById(STYLE_ID)) return;
  const style = document.createElement("style");
  style.id = STYLE_ID;
  style.textContent = STYLE;
  document.head.append(style);
}

export function mountViewer(root, bus) {
  addStyle();
  root.replaceChildren();
  root.insertAdjacentHTML(
    "beforeend",
    `<div class="lv">
      <div class="lv-screen"><canvas class="lv-canvas" width="960" height="540"></canvas></div>
      <div class="lv-bar">
        <button type="button" class="lv-play" title="Play or pause (Space)">Play</button>
        <button type="button" class="lv-stop" title="Stop playback">Stop</button>
        <button type="button" class="lv-sound" title="Sound on or off">Sound off</button>
        <span class="lv-frame" title="the frame shown">frame –</span>
        <span class="lv-stats"></span>
        <span class="lv-error" role="alert"></span>
      </div>
    </div>`,
  );
  const $ = (s) => root.querySelector(s);
  const canvas = $(".lv-canvas");
  const context = canvas.getContext("2d");
  const ui = {
    play: $(".lv-play"),
    stop: $(".lv-stop"),
    sound: $(".lv-sound"),
    frame: $(".lv-frame"),
    stats: $(".lv-stats"),
    error: $(".lv-error"),
  };

  const state = {
    drawn: 0,
    received: 0,
    skipped: 0,
    decodeErrors: 0,
    frame: null,
    frames: [], // the frames drawn, the newest last
    latencies: [], // beside each: ms from the ring's publish to its draw (null: no clock yet)
    arrivals: [], // ... and to its arrival in the page (the rest is decoding and drawing)
    clock: { offsetMs: null, rttMs: null },
    server: { sent: 0, dropped: 0, frame: null },
    playing: false,
    sound: { received: 0, played: 0, late: 0, muted: true, frames: [], dues: [] },
  };
  window.lumieraViewer = state;
  let audio = null; // the AudioContext, made on the first unmute (a gesture)
  let soundAt = 0; // the AudioContext time where the last scheduled frame of sound ends

  let visible = true;
  let busy = false; // a picture is being decoded and drawn
  let waiting = null; // the newest picture that came meanwhile (latest wins here too)
  let statsAt = 0; // performance.now() of the last word on the playback

  // -- the clock: server (time.monotonic() ms) minus performance.now() --------------------

  function serverNowMs(pageMs) {
    if (state.clock.offsetMs !== null) return pageMs + state.clock.offsetMs;
    const fromHello = bus.serverNowMs(); // one-way estimate until the sync is done
    return fromHello === null ? null : fromHello - (performance.now() - pageMs);
  }

  async function syncClock() {
    let best = null;
    for (let i = 0; i < CLOCK_SAMPLES; i++) {
      const sent = performance.now();
      let reply;
      try {
        reply = await bus.ask("clock", { page_ms: sent }, { timeoutMs: 5000 });
      } catch (e) {
        return; // disconnected: the next open syncs again
      }
      const back = performance.now();
      if (typeof reply?.server_ms !== "number") return;
      const rtt = back - sent;
      if (best === null || rtt < best.rttMs) {
        best = { offsetMs: reply.server_ms - (sent + back) / 2, rttMs: rtt };
      }
    }
    if (best !== null) state.clock = best;
  }

  // -- pictures ---------------------------------------------------------------------------

  function ack(frame) {
    bus.send("viewer_ack", { on: visible, frame });
  }

  async function draw(buffer, arrived) {
    const [frame, published] = pictureHeader(buffer);
    try {
      const blob = new Blob([new Uint8Array(buffer, FRAME_HEADER_BYTES)], { type: "image/jpeg" });
      const bitmap = await createImageBitmap(blob);
      if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
      }
      context.drawImage(bitmap, 0, 0);
      bitmap.close();
      const now = serverNowMs(performance.now());
      const came = serverNowMs(arrived);
      state.frames.push(frame);
      state.latencies.push(now === null ? null : now - published * 1000);
      state.arrivals.push(came === null ? null : came - published * 1000);
      if (state.frames.length > LATENCIES_KEPT) {
        for (const list of [state.frames, state.latencies, state.arrivals]) list.splice(0, 1000);
      }
      state.drawn += 1;
      state.frame = frame;
      ui.frame.textContent = `frame ${frame}`;
      ui.frame.dataset.frame = String(frame);
    } catch (e) {
      state.decodeErrors += 1;
      ui.error.textContent = `a picture could not be shown: ${e.message ?? e}`;
    }
    ack(frame);
  }

  async function take(buffer) {
    state.received += 1;
    const picture = { buffer, arrived: performance.now() };
    if (busy) {
      if (waiting !== null) state.skipped += 1;
      waiting = picture;
      return;
    }
    busy = true;
    try {
      let next = picture;
      while (next !== null) {
        await draw(next.buffer, next.arrived);
        next = waiting;
        waiting = null;
      }
    } finally {
      busy = false;
    }
  }

  // -- sound ---------------------------------------------------------------------------------

  function hear(buffer) {
    const view = new DataView(buffer, 0, SOUND_HEADER_BYTES);
    const frame = Number(view.getBigInt64(0, true));
    const due = view.getFloat64(8, true);
    const rate = view.getUint32(20, true);
    const channels = view.getUint16(24, true);
    const sound = state.sound;
    sound.received += 1;
    sound.frames.push(frame);
    sound.dues.push(due);
    if (sound.frames.length > SOUND_KEPT) {
      sound.frames.splice(0, 500);
      sound.dues.splice(0, 500);
    }
    if (sound.muted || audio === null || channels < 1) return;
    const samples = new Int16Array(buffer, SOUND_HEADER_BYTES);
    const length = Math.floor(samples.length / channels);
    const serverNow = serverNowMs(performance.now());
    if (length < 1 || serverNow === null) return;
    // Its due time on the AudioContext's clock: now there + (due - now on the server).
    let at = audio.currentTime + (due * 1000 - serverNow) / 1000 + SOUND_LATENCY_S;
    if (Math.abs(at - soundAt) <= SOUND_SLACK_S) at = soundAt; // back to back: no gap
    if (at < audio.currentTime) {
      sound.late += 1; // after a seek, or too late to be heard with its picture
      return;
    }
    const out = audio.createBuffer(channels, length, rate);
    for (let c = 0; c < channels; c++) {
      const data = out.getChannelData(c);
      for (let i = 0; i < length; i++) data[i] = samples[i * channels + c] / 32768;
    }
    const source = audio.createBufferSource();
    source.buffer = out;
    source.connect(audio.destination);
    source.start(at);
    soundAt = at + length / rate;
    sound.played += 1;
  }

  function setMuted(muted) {
    state.sound.muted = muted;
    ui.sound.textContent = muted ? "Sound off" : "Sound on";
    ui.sound.setAttribute("aria-pressed", String(!muted));
    if (!muted && audio === null && typeof AudioContext === "function") {
      audio = new AudioContext({ latencyHint: "interactive" });
    }
    if (audio !== null) {
      if (muted) audio.suspend();
      else audio.resume();
    }
    soundAt = 0;
  }
  ui.sound.addEventListener("click", () => setMuted(!state.sound.muted));

  bus.onBinary((buffer) => {
    if (buffer.byteLength <= FRAME_HEADER_BYTES) return;
    const tagged = buffer.byteLength >= SOUND_HEADER_BYTES;
    if (tagged && new DataView(buffer).getUint32(16, true) === SOUND_TAG) hear(buffer);
    else take(buffer);
  });

  bus.on("viewer", (m) => {
    state.server = { sent: m.sent, dropped: m.dropped, frame: m.frame ?? null };
    ui.stats.textContent = `sent ${m.sent}, dropped ${m.dropped}`;
  });

  function opened() {
    ack(state.frame); // on (or off) from the start: the server sends the newest picture
    syncClock();
  }
  bus.onConnection((connection) => {
    if (connection === "open") opened();
  });
  // This module may be loaded (a dynamic import) after the connection opened: its
  // "open" went by unseen, so do now what it would have done.
  if (bus.connected) opened();

  // -- the player: play/pause, stop -------------------------------------------------------

  function showPlaying(playing) {
    state.playing = playing;
    ui.play.textContent = playing ? "Pause" : "Play";
  }

  async function command(name) {
    ui.error.textContent = "";
    try {
      const stream = await bus.request("player", name, {});
      statsAt = performance.now();
      showPlaying(stream?.state === "running");
    } catch (e) {
      if (name === "pause" && e.code === "not_found") {
        return command("play"); // it ended meanwhile: play again
      }
      if (name === "pause" || name === "stop") showPlaying(false);
      ui.error.textContent = `${name}: ${e.code}: ${e.message}`;
    }
  }

  function playOrPause() {
    command(state.playing ? "pause" : "play");
  }

  ui.play.addEventListener("click", playOrPause);
  ui.stop.addEventListener("click", () => command("stop"));

  document.addEventListener("keydown", (e) => {
    if (e.code !== "Space" || !visible || e.repeat || e.ctrlKey || e.altKey || e.metaKey) return;
    const target = e.target;
    if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) {
      return; // typing a space
    }
    e.preventDefault(); // no scrolling, and no click of a focused button besides
    playOrPause();
  });

  // The Player's playback, as stats.player says it while it has streams.
  // It says nothing once no stream is live: after STATS_SILENT_MS, nothing plays.
  bus.subscribe("viewer", ["stats.player"]);
  bus.on("event", (m) => {
    if (m.topic !== "stats.player") return;
    const streams = (m.body.streams ?? []).filter((s) => s.mode === "playback");
    if (!streams.length) return;
    statsAt = performance.now();
    showPlaying(streams[streams.length - 1].state === "running");
  });
  setInterval(() => {
    if (state.playing && statsAt && performance.now() - statsAt > STATS_SILENT_MS) {
      showPlaying(false);
    }
  }, STATS_SILENT_MS / 2);

  return {
    setMuted,
    setVisible(shown) {
      if (shown === visible) return;
      visible = shown;
      if (bus.connected) ack(state.frame);
    },
  };
}
