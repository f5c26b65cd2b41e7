// Crossfades on the timeline (docs/PROTOCOL.md 8.4, 8.7): a transition is drawn over the
// overlap of its two clips, [b.position, a.end), as the shape of its fade (a going out,
// b coming in; straight lines for linear, arcs for equal power), with a tooltip. A cut
// (clip a ends where clip b starts, on one track) has a small marker; selecting it, or
// a clip beside it, offers "Crossfade N frames" (add_transition); a selected transition
// shows its curve and can be removed (remove_transition).

import { seconds } from "./tlmodel.js";

export const CURVE_NAMES = { linear: "linear", equal_power: "equal power" };
const MIN_PX = 6; // a transition is drawn at least this wide

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// The gains of a (fading out) and b (fading in) at u in 0..1 (lumiera/bus/timeline.py).
export function gains(curve, u) {
  if (curve === "equal_power") return [Math.cos((u * Math.PI) / 2), Math.sin((u * Math.PI) / 2)];
  return [1 - u, u];
}

export function describe(model, t) {
  const span = model.overlap(t);
  const curve = CURVE_NAMES[t.curve] ?? t.curve;
  if (!span) return `${t.id}: crossfade ${t.a} → ${t.b}, ${curve}`;
  return (
    `${t.id}: crossfade ${t.a} → ${t.b}, ${curve}, ${span.length} frames ` +
    `(${seconds(span.length, model.rate)}), frames ${span.first}–${span.end}`
  );
}

// The element of transition `t` in its lane: {ppf, height (px, inside its border),
// hues: [a, b], selected}.
export function drawTransition(model, t, { ppf, height, hues, selected }) {
  const span = model.overlap(t);
  if (!span) return null;
  const e = el("div", "transition");
  e.dataset.id = t.id;
  e.dataset.a = t.a;
  e.dataset.b = t.b;
  e.dataset.curve = t.curve;
  e.dataset.length = span.length;
  e.classList.toggle("selected", selected);
  let width = Math.max(MIN_PX, span.length * ppf);
  e.style.left = `${span.first * ppf + (span.length * ppf - width) / 2}px`;
  e.style.width = `${width}px`;
  e.title = `${describe(model, t)}\nClick to select it; Delete removes it.`;
  const canvas = el("canvas");
  const dpr = window.devicePixelRatio || 1;
  const h = Math.max(4, height);
  width -= 2; // inside its border
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${h}px`;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  const steps = Math.max(8, Math.round(width / 2));
  const curveOf = (which) => {
    const points = [];
    for (let k = 0; k <= steps; k++) {
      const u = k / steps;
      points.push([u * width, h - 2 - gains(t.curve, u)[which] * (h - 4)]);
    }
    return points;
  };
  for (const [which, hue] of [[0, hues[0]], [1, hues[1]]]) {
    const points = curveOf(which);
    g.beginPath();
    g.moveTo(0, h);
    for (const [x, y] of points) g.lineTo(x, y);
    g.lineTo(width, h);
    g.closePath();
    g.fillStyle = `hsla(${hue}, 60%, 60%, 0.35)`;
    g.fill();
    g.beginPath();
    points.forEach(([x, y], k) => (k ? g.lineTo(x, y) : g.moveTo(x, y)));
    g.strokeStyle = which === 0 ? "rgba(255,255,255,0.75)" : "#fff";
    g.lineWidth = 1.5;
    g.stroke();
  }
  e.append(canvas);
  return e;
}

// The marker of the cut a|b (a ends where b starts): a click selects the cut.
export function cutMarker(a, b, ppf, selected) {
  const e = el("button", "tl-cut");
  e.type = "button";
  e.dataset.a = a.id;
  e.dataset.b = b.id;
  e.style.left = `${b.position * ppf}px`;
  e.classList.toggle("selected", selected);
  e.title = `Cut ${a.id} | ${b.id} at frame ${b.position}: click to crossfade them`;
  return e;
}

// The inspector's rows offering a crossfade at each cut [a, b]:
// host {model, edit(command, args), rate}.
export function crossfadeRows(host, cuts) {
  const rows = [];
  for (const [a, b] of cuts) {
    const most = host.model.maxCrossfade(a, b);
    const row = el("div", "row crossfade");
    row.dataset.a = a.id;
    row.dataset.b = b.id;
    const frames = el("input", "tl-xfade-frames");
    Object.assign(frames, { type: "number", min: 1, step: 1 });
    if (most > 0) frames.max = most;
    frames.value = String(Math.max(1, Math.min(most, Math.floor(host.rate / 2))));
    frames.setAttribute("aria-label", `crossfade length in frames, ${a.id} into ${b.id}`);
    const curve = el("select", "tl-xfade-curve");
    curve.setAttribute("aria-label", "crossfade curve");
    for (const [value, name] of Object.entries(CURVE_NAMES)) {
      curve.append(Object.assign(el("option", "", name), { value }));
    }
    const button = el("button", "tl-add-transition");
    button.type = "button";
    const label = () => (button.textContent = `Crossfade ${frames.value} frames`);
    label();
    frames.oninput = label;
    button.onclick = () =>
      host.edit("add_transition", {
        a: a.id,
        b: b.id,
        length: Math.round(Number(frames.value)),
        curve: curve.value,
      });
    button.disabled = most < 1;
    button.title =
      most < 1
        ? `${b.id} has no frames of its media before its start: trim its in edge later first`
        : `${a.id} fades into ${b.id} over up to ${most} frames before the cut at ` +
          `${b.position} (${b.id} is extended over ${a.id}'s end: add_transition)`;
    row.append(el("span", "k", `${a.id}|${b.id}`), frames, curve, button);
    rows.push(row);
  }
  return rows;
}

// The inspector of transition t: what it joins, its span and curve, and Remove.
export function transitionRows(host, t) {
  const span = host.model.overlap(t);
  const rows = [
    ["id", t.id],
    ["fades", `${t.a} into ${t.b}`],
    ["curve", CURVE_NAMES[t.curve] ?? t.curve],
  ];
  if (span) {
    rows.push(["frames", `${span.first} – ${span.end}`]);
    rows.push(["length", `${span.length} (${seconds(span.length, host.rate)})`]);
  }
  const out = rows.map(([k, v]) => {
    const row = el("div", "row");
    row.append(el("span", "k", k), el("span", "v", v));
    return row;
  });
  const remove = el("button", "tl-remove-transition", "Remove crossfade");
  remove.type = "button";
  remove.title = `${t.b} starts at the cut again (remove_transition, one undo step)`;
  remove.onclick = () => host.edit("remove_transition", { id: t.id });
  out.push(remove);
  return out;
}
