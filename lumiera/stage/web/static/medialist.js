// The timeline's media list: each media of the session, what it is (pictures and sound,
// or sound only), dragged onto a track or added after the selected track's last clip.

import { basename, hasAudio, hasVideo, rateOf, seconds } from "./tlmodel.js";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// A media's (or a clip's, by its media) colour: a hue from its id.
export function hue(id) {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

// Draw `model`'s media into the list `ul`; "+ clip" calls addClip(media id).
export function drawMediaList(ul, model, addClip) {
  ul.replaceChildren();
  if (model.media.size === 0) ul.append(el("li", "empty", "No media: add a file above."));
  for (const m of model.media.values()) {
    const item = el("li", "media");
    item.dataset.id = m.id;
    item.draggable = true;
    const sound = hasAudio(m) ? `${m.audio_rate} Hz ${m.audio_layout || m.audio_channels}` : "";
    const what = hasVideo(m) ? `${m.width}x${m.height} ${m.pix_fmt}` : "sound only";
    item.title =
      `${m.path}\n${what}${sound && `, ${sound}`}, ${m.frames} frames at ${m.rate} fps\n` +
      "Drag onto a track, or add it after the last clip of the selected track.";
    item.classList.toggle("sound", !hasVideo(m));
    item.ondragstart = (e) => e.dataTransfer.setData("text/x-lumiera-media", m.id);
    const add = el("button", "tl-add-clip", "+ clip");
    add.type = "button";
    add.title = "Add a clip of it to the selected track";
    add.onclick = () => addClip(m.id);
    const length = `${m.frames} frames, ${seconds(m.frames, rateOf(m.rate))}`;
    const name = el("span", "name", basename(m.path));
    if (hasAudio(m)) name.append(el("span", "sound", " ♪"));
    item.append(name, el("span", "meta", `${m.id} · ${length}`), add);
    item.style.setProperty("--hue", hue(m.id));
    ul.append(item);
  }
}
