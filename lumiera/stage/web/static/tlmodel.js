// The page's copy of the session's timeline (docs/PROTOCOL.md 8.7), kept current from
// `session` (the whole) and `diff` (what one command changed: lumiera/stage/gui/diff.py
// says how it applies). Pure: no DOM.

// "25" -> 25, "30000/1001" -> 29.97...
export function rateOf(text) {
  const [num, den] = String(text).split("/");
  const value = Number(num) / (den === undefined ? 1 : Number(den));
  return Number.isFinite(value) && value > 0 ? value : 25;
}

// Frame -> "h:mm:ss:ff" (hours, minutes, seconds, frames), at `rate` frames per second.
export function timecode(frame, rate) {
  const seconds = Math.floor(frame / rate);
  const ff = Math.min(Math.round(frame - seconds * rate), Math.ceil(rate) - 1);
  const two = (n) => String(n).padStart(2, "0");
  const h = Math.floor(seconds / 3600);
  return `${h}:${two(Math.floor(seconds / 60) % 60)}:${two(seconds % 60)}:${two(ff)}`;
}

// Frame -> a ruler's label: "m:ss" on a whole second, else the frame within it ("12f").
export function rulerLabel(frame, rate) {
  const seconds = Math.floor(frame / rate + 1e-9);
  const ff = Math.round(frame - seconds * rate);
  if (ff > 0) return `${ff}f`;
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

// Frames -> "2.00 s" (a length).
export function seconds(frames, rate) {
  return `${(frames / rate).toFixed(2)} s`;
}

export const clipLength = (c) => c.source_out - c.source_in;
export const clipEnd = (c) => c.position + clipLength(c);

export function basename(path) {
  return String(path).split("/").pop() || String(path);
}

// Fields added to the timeline later have defaults (an older session's timeline lacks them).
const withClipDefaults = (c) => ({ opacity: 1, gain_db: 0, ...c });
const withTrackDefaults = (t) => ({ kind: "video", ...t });
const transitionMap = (list) =>
  new Map((list ?? []).map((t) => [t.id, { curve: "linear", ...t }]));

// Media with pictures (an audio-only media has width 0), and media with sound.
export const hasVideo = (m) => Boolean(m && m.width > 0);
export const hasAudio = (m) => Boolean(m && m.audio_rate > 0);

export class TimelineModel {
  constructor() {
    this.revision = null; // null: nothing loaded yet
    this.output = { width: 1920, height: 1080, rate: "25" };
    this.media = new Map(); // id -> media
    this.tracks = []; // bottom to top
    this.clips = new Map(); // id -> clip
    this.transitions = new Map(); // id -> transition {id, a, b, curve}
  }

  get rate() {
    return rateOf(this.output.rate);
  }

  // The whole timeline (a `session` message, or `session timeline`'s result).
  load(timeline) {
    this.revision = timeline.revision ?? 0;
    this.output = timeline.output;
    this.media = new Map((timeline.media ?? []).map((m) => [m.id, m]));
    this.tracks = (timeline.tracks ?? []).map(withTrackDefaults);
    this.clips = new Map((timeline.clips ?? []).map((c) => [c.id, withClipDefaults(c)]));
    this.transitions = transitionMap(timeline.transitions);
  }

  // One diff; false (nothing changed) when it does not start at this revision.
  apply(diff) {
    if (this.revision === null || diff.base !== this.revision) return false;
    for (const id of diff.removed_media ?? []) this.media.delete(id);
    for (const id of diff.removed_clips ?? []) this.clips.delete(id);
    for (const m of diff.media ?? []) this.media.set(m.id, m);
    for (const c of diff.clips ?? []) this.clips.set(c.id, withClipDefaults(c));
    if (diff.tracks) this.tracks = diff.tracks.map(withTrackDefaults);
    if (diff.output) this.output = diff.output;
    // the whole list when it changed ([]: none left); absent or null: unchanged
    if (Array.isArray(diff.transitions)) this.transitions = transitionMap(diff.transitions);
    this.revision = diff.revision;
    return true;
  }

  track(id) {
    return this.tracks.find((t) => t.id === id) ?? null;
  }

  // Whether a clip carries sound (its media has audio), and whether it shows only sound
  // (on an audio track: a clip of audio-only media is always there).
  sounds(c) {
    return hasAudio(this.media.get(c.media));
  }

  soundOnly(c) {
    return this.track(c.track)?.kind === "audio" || !hasVideo(this.media.get(c.media));
  }

  // The frames [first, end) a transition spans: clip b starts inside clip a.
  overlap(t) {
    const a = this.clips.get(t.a);
    const b = this.clips.get(t.b);
    if (!a || !b) return null;
    return { first: b.position, end: clipEnd(a), length: clipEnd(a) - b.position };
  }

  transitionsOf(clipId) {
    return [...this.transitions.values()].filter((t) => t.a === clipId || t.b === clipId);
  }

  transitionsOn(track) {
    return [...this.transitions.values()].filter((t) => this.clips.get(t.a)?.track === track);
  }

  // The cuts of a clip: [a, b] pairs on its track where a ends exactly where b starts,
  // without a transition between them (where add_transition may make one).
  cutsOf(clipId) {
    const c = this.clips.get(clipId);
    if (!c) return [];
    const joined = new Set([...this.transitions.values()].map((t) => `${t.a}/${t.b}`));
    const out = [];
    for (const o of this.clipsOn(c.track)) {
      if (o.id === c.id) continue;
      if (clipEnd(o) === c.position && !joined.has(`${o.id}/${c.id}`)) out.push([o, c]);
      if (clipEnd(c) === o.position && !joined.has(`${c.id}/${o.id}`)) out.push([c, o]);
    }
    return out;
  }

  // The longest crossfade at the cut a|b: less than a's length, at most b's length and
  // the frames of b's media before its source_in (docs/PROTOCOL.md 8.4, add_transition).
  maxCrossfade(a, b) {
    return Math.max(0, Math.min(clipLength(a) - 1, clipLength(b), b.source_in));
  }

  clipsOn(track) {
    return [...this.clips.values()]
      .filter((c) => c.track === track)
      .sort((a, b) => a.position - b.position);
  }

  // The first frame after the last clip (0 when empty).
  end() {
    let end = 0;
    for (const c of this.clips.values()) end = Math.max(end, clipEnd(c));
    return end;
  }

  trackEnd(track) {
    return this.clipsOn(track).reduce((end, c) => Math.max(end, clipEnd(c)), 0);
  }

  // Whether [position, position+length) on `track` is free of clips (but `except`, and
  // the clips `except` is joined to by a transition: they overlap by design).
  free(track, position, length, except = null) {
    const partners = new Set(
      except === null ? [] : this.transitionsOf(except).map((t) => (t.a === except ? t.b : t.a))
    );
    return this.clipsOn(track).every(
      (c) =>
        c.id === except ||
        partners.has(c.id) ||
        clipEnd(c) <= position ||
        c.position >= position + length
    );
  }

  // The clip edges on `track` (but `except`'s), for snapping.
  edges(track, except = null) {
    const out = [0];
    for (const c of this.clipsOn(track)) if (c.id !== except) out.push(c.position, clipEnd(c));
    return out;
  }
}

// The nearest of `candidates` to any of `points` within `reach`: the shift to it, or 0.
export function snap(points, candidates, reach) {
  let best = 0;
  let bestDistance = reach + 1;
  for (const p of points) {
    for (const c of candidates) {
      const d = Math.abs(c - p);
      if (d <= reach && d < bestDistance) {
        bestDistance = d;
        best = c - p;
      }
    }
  }
  return best;
}
