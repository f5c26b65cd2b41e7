// Sound on the timeline: how a clip that sounds is drawn (a waveform-like picture on an
// audio track, a small mark on a video clip whose media has sound, a badge for its
// gain), and the inspector's gain slider (one set_gain on release, as opacity does).
// The waveform is a likeness, not the media's samples: the session has no peaks to give.

export const MUTE_DB = -96; // the session's silent end (lumiera/bus/timeline.py MIN_GAIN_DB)
const SLIDER_MIN = -60; // the slider's range in dB; one step below it is "mute"
const SLIDER_MAX = 12;
const SLIDER_MUTE = SLIDER_MIN - 1;
const WAVE_W = 160; // one tile of the waveform picture, in canvas pixels
const WAVE_H = 48;
export const GAIN_NOTE =
  "The clip's sound level in dB: drag the slider to change it, to the left end to mute " +
  "it (set_gain, one undo step).";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// -3.5 -> "−3.5 dB", 6 -> "+6 dB", -96 -> "mute".
export function gainText(db) {
  if (db <= MUTE_DB) return "mute";
  if (db === 0) return "0 dB";
  const magnitude = Math.abs(db) % 1 === 0 ? String(Math.abs(db)) : Math.abs(db).toFixed(1);
  return `${db < 0 ? "−" : "+"}${magnitude} dB`;
}

const toSlider = (db) =>
  db <= MUTE_DB ? SLIDER_MUTE : Math.max(SLIDER_MIN, Math.min(SLIDER_MAX, db));
const fromSlider = (value) => (Number(value) <= SLIDER_MUTE ? MUTE_DB : Number(value));

// A tile of a waveform-like picture for a media (the same one each time for its id).
const waves = new Map();
export function waveform(id) {
  if (waves.has(id)) return waves.get(id);
  let seed = 7;
  for (const ch of id) seed = (seed * 31 + ch.charCodeAt(0)) >>> 0;
  const random = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const canvas = document.createElement("canvas");
  canvas.width = WAVE_W;
  canvas.height = WAVE_H;
  const g = canvas.getContext("2d");
  g.fillStyle = "rgba(210, 255, 235, 0.55)";
  let level = 0.5;
  for (let x = 0; x < WAVE_W; x += 2) {
    // a slow envelope with a fast flutter: phrases of sound, and quieter gaps
    level = Math.max(0.08, Math.min(1, level + (random() - 0.5) * 0.35));
    const envelope = 0.55 + 0.45 * Math.sin((x / WAVE_W) * Math.PI * 4 + seed % 7);
    const half = Math.max(1, (WAVE_H / 2 - 2) * level * envelope * (0.6 + 0.4 * random()));
    g.fillRect(x, WAVE_H / 2 - half, 1.5, half * 2);
  }
  g.fillStyle = "rgba(210, 255, 235, 0.35)";
  g.fillRect(0, WAVE_H / 2 - 0.5, WAVE_W, 1);
  const url = `url(${canvas.toDataURL()})`;
  waves.set(id, url);
  return url;
}

// Marks the clip element `e` for its sound: the waveform on an audio track (soundOnly; as
// high as its gain), a sound mark on a video clip whose media has sound, and its gain
// when not 0 dB.
export function markSound(e, c, { sounds, soundOnly, ppf }) {
  e.classList.toggle("sound", soundOnly);
  e.dataset.gain = String(c.gain_db);
  if (soundOnly) {
    // the picture moves with the media's frames: a trim keeps it where it was
    const tile = Math.max(60, 50 * ppf);
    e.style.backgroundImage = waveform(c.media);
    // as loud as its gain: 0 dB fills 80 % of the height, -12 dB 40 %, mute a flat line
    const loud = c.gain_db <= MUTE_DB ? 0.04 : Math.min(1, 0.8 * 10 ** (c.gain_db / 40));
    e.style.backgroundSize = `${tile}px ${Math.max(4, Math.round(loud * 100))}%`;
    e.style.backgroundPositionX = `${-((c.source_in * ppf) % tile)}px`;
  } else if (sounds) {
    const mark = el("span", "clip-sound", "♪");
    mark.title = "Its media has sound: it plays with the clip";
    e.append(mark);
  }
  if (sounds && c.gain_db !== 0) {
    const badge = el("span", "clip-gain", gainText(c.gain_db));
    badge.classList.toggle("muted", c.gain_db <= MUTE_DB);
    badge.title = `gain ${gainText(c.gain_db)}: select the clip to change it`;
    e.append(badge);
  }
}

// The inspector's gain row: a slider from mute (-96) over -60 .. +12 dB; on release one
// set_gain through `edit` (an error is shown and the inspector drawn again from the
// session, the slider back where it was; a success arrives as a diff).
export function gainRow(c, edit) {
  const row = el("label", "row gain");
  row.title = GAIN_NOTE;
  const slider = el("input");
  Object.assign(slider, { type: "range", min: SLIDER_MUTE, max: SLIDER_MAX, step: 0.5 });
  slider.value = String(toSlider(c.gain_db));
  slider.setAttribute("aria-label", "gain");
  slider.className = "tl-gain";
  const shown = el("span", "v", gainText(c.gain_db));
  slider.oninput = () => (shown.textContent = gainText(fromSlider(slider.value)));
  slider.onchange = () => edit("set_gain", { id: c.id, gain_db: fromSlider(slider.value) });
  row.append(el("span", "k", "gain"), slider, shown);
  return row;
}
