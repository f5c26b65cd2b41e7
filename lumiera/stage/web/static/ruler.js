// The timeline's ruler: time marks for the visible part (drawn on a canvas as wide as
// the view, redrawn on scroll, zoom and resize) and the playhead; a click seeks.

import { rulerLabel } from "./tlmodel.js";

const LABEL_PX = 80; // labelled marks at least this far apart
const STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];
const STEPS_FRAMES = [1, 2, 5, 10];

// The frames between labelled marks.
export function step(ppf, rate) {
  for (const f of STEPS_FRAMES) if (f < rate && f * ppf >= LABEL_PX) return f;
  for (const s of STEPS_S) if (s * rate * ppf >= LABEL_PX) return s * rate;
  return STEPS_S.at(-1) * rate;
}

export class Ruler {
  // view: {ppf(), scroll(), rate(), onSeek(frame)}
  constructor(root, view) {
    this.root = root;
    this.view = view;
    this.canvas = root.querySelector("canvas");
    root.addEventListener("click", (e) => {
      const x = e.clientX - root.getBoundingClientRect().left + view.scroll();
      view.onSeek(Math.max(0, Math.floor(x / view.ppf())));
    });
  }

  draw(playhead = null) {
    const { canvas, view } = this;
    const width = this.root.clientWidth;
    const height = this.root.clientHeight;
    if (width === 0 || height === 0) return;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
    }
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    const ppf = view.ppf();
    const rate = view.rate();
    const left = view.scroll();
    const major = step(ppf, rate);
    const minor = major / 5;
    const style = getComputedStyle(this.root);
    g.strokeStyle = style.getPropertyValue("--ruler-tick") || "#889";
    g.fillStyle = style.getPropertyValue("--ruler-text") || "#ccd";
    g.font = "11px system-ui, sans-serif";
    g.beginPath();
    const first = Math.floor(left / ppf / minor) * minor;
    for (let f = first; f * ppf - left <= width; f += minor) {
      const x = Math.round(f * ppf - left) + 0.5;
      const isMajor = Math.abs(f / major - Math.round(f / major)) < 1e-6;
      if (minor * ppf < 4 && !isMajor) continue;
      g.moveTo(x, height);
      g.lineTo(x, isMajor ? height - 12 : height - 5);
      if (isMajor) g.fillText(rulerLabel(Math.round(f), rate), x + 3, height - 15);
    }
    g.stroke();
    if (playhead !== null) {
      const x = playhead * ppf - left;
      g.fillStyle = style.getPropertyValue("--playhead") || "#f44";
      g.beginPath();
      g.moveTo(x - 6, 0);
      g.lineTo(x + 6, 0);
      g.lineTo(x, 10);
      g.closePath();
      g.fill();
      g.fillRect(x - 0.5, 0, 1, height);
    }
  }
}
