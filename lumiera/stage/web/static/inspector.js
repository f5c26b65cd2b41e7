// The timeline's inspector: what is selected, and its controls. A clip: its facts, the
// opacity slider, the gain slider when it sounds (sound.js), "Crossfade N frames" at
// each cut beside it and its crossfades; a cut: the crossfade it may get; a crossfade:
// its clips, span and curve, and Remove (crossfade.js). Each slider sends one command
// on release; an error is shown by the timeline and the inspector drawn again from the
// session (the slider back to its value), a success arrives as a diff.

import { basename, clipLength, seconds, timecode } from "./tlmodel.js";
import { GAIN_NOTE, gainRow } from "./sound.js";
import { crossfadeRows, transitionRows } from "./crossfade.js";

const OPACITY_NOTE =
  "How opaque the clip is over the tracks below it: drag the slider to change it " +
  "(set_opacity, one undo step).";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function factRows(rows) {
  return rows.map(([k, v]) => {
    const row = el("div", "row");
    row.append(el("span", "k", k), el("span", "v", v));
    return row;
  });
}

function opacityRow(c, edit) {
  const opacity = el("label", "row opacity");
  opacity.title = OPACITY_NOTE;
  const percent = Math.round(c.opacity * 100);
  const slider = el("input", "tl-opacity");
  Object.assign(slider, { type: "range", min: 0, max: 100, value: percent });
  slider.setAttribute("aria-label", "opacity");
  const shown = el("span", "v", `${percent} %`);
  slider.oninput = () => (shown.textContent = `${slider.value} %`);
  slider.onchange = () => edit("set_opacity", { id: c.id, opacity: Number(slider.value) / 100 });
  opacity.append(el("span", "k", "opacity"), slider, shown);
  return opacity;
}

// parts: {root, title, remove (the Delete button)};
// host: {model, state: {selected, cut, transition}, edit(command, args), select(what)}.
export function showInspector({ root, title, remove }, host) {
  const { model, state, edit } = host;
  const c = state.selected && model.clips.get(state.selected);
  const t = state.transition && model.transitions.get(state.transition);
  remove.disabled = !c && !t;
  remove.textContent = t ? "Delete crossfade" : "Delete clip";
  remove.title = `Remove the selected ${t ? "crossfade" : "clip"} (Delete)`;
  title.textContent = t ? "Crossfade" : state.cut ? "Cut" : "Clip";
  const xfade = { model, edit, rate: model.rate };
  root.replaceChildren();
  if (t) {
    root.append(...transitionRows(xfade, t));
    return;
  }
  if (state.cut) {
    const [a, b] = state.cut.map((id) => model.clips.get(id));
    root.append(...factRows([["cut", `${a.id} | ${b.id} at ${b.position}`]]));
    root.append(...crossfadeRows(xfade, [[a, b]]));
    return;
  }
  if (!c) {
    root.textContent = "Select a clip.";
    return;
  }
  const rate = model.rate;
  root.append(
    ...factRows([
      ["clip", c.id],
      ["media", `${c.media} (${basename(model.media.get(c.media)?.path ?? "?")})`],
      ["track", c.track],
      ["at", `${c.position} (${timecode(c.position, rate)})`],
      ["source", `${c.source_in} – ${c.source_out}`],
      ["length", `${clipLength(c)} (${seconds(clipLength(c), rate)})`],
    ])
  );
  if (!model.soundOnly(c)) root.append(opacityRow(c, edit), el("div", "hint", OPACITY_NOTE));
  if (model.sounds(c)) root.append(gainRow(c, edit), el("div", "hint", GAIN_NOTE));
  const cuts = model.cutsOf(c.id);
  if (cuts.length) root.append(el("h4", "", "Crossfade at a cut"), ...crossfadeRows(xfade, cuts));
  for (const x of model.transitionsOf(c.id)) {
    const link = el("button", "tl-select-transition", `${x.id}: ${x.a} into ${x.b}`);
    link.type = "button";
    link.title = "Select this crossfade";
    link.onclick = () => host.select({ transition: x.id });
    root.append(link);
  }
}
