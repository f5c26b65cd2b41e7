// A clip under the pointer: a click selects it, a drag of its body moves it (along its
// track or onto another: move_clip), a drag of an edge trims it (trim_clip; the in
// edge moves source_in and position together, in the one command). The element
// follows the pointer; on release the command goes to the session, and the timeline
// is drawn again from the session's answer (a diff), or back as it was on an error.
// Each drag is one command, so one undo step. Edges snap to the other clips' edges
// within SNAP_PX.

import { clipEnd, clipLength, snap } from "./tlmodel.js";

const CLICK_PX = 3; // a smaller movement is a click
const SNAP_PX = 8;

export class ClipDrag {
  // host: {model, ppf(), lanes(), select(id, shift), draw(),
  //        edit(command, args): the result, or null with the error shown and the
  //        drawing back to what the session holds}
  constructor(host) {
    this.host = host;
    this.active = null; // {mode, element, clip, x0, y0, moved, position, track, source_in, source_out}
  }

  pointerDown(e) {
    const element = e.target.closest(".clip");
    if (!element || e.button !== 0) return;
    const clip = this.host.model.clips.get(element.dataset.id);
    if (!clip) return;
    e.preventDefault();
    const handle = e.target.closest(".handle");
    const mode = handle ? (handle.classList.contains("in") ? "in" : "out") : "move";
    this.active = {
      mode,
      element,
      clip,
      x0: e.clientX,
      y0: e.clientY,
      moved: false,
      position: clip.position,
      track: clip.track,
      source_in: clip.source_in,
      source_out: clip.source_out,
    };
    element.setPointerCapture(e.pointerId);
    element.onpointermove = (ev) => this.move(ev);
    element.onpointerup = (ev) => this.up(ev);
    element.onpointercancel = () => this.cancel();
  }

  move(e) {
    const d = this.active;
    if (!d) return;
    if (!d.moved && Math.hypot(e.clientX - d.x0, e.clientY - d.y0) < CLICK_PX) return;
    d.moved = true;
    d.element.classList.add("dragging");
    const { model } = this.host;
    const ppf = this.host.ppf();
    const df = Math.round((e.clientX - d.x0) / ppf);
    const c = d.clip;
    const reach = SNAP_PX / ppf;
    if (d.mode === "move") {
      d.track = this.trackAt(e.clientY) ?? d.track;
      let position = Math.max(0, c.position + df);
      const edges = model.edges(d.track, c.id);
      position += snap([position, position + clipLength(c)], edges, reach);
      d.position = Math.max(0, position);
    } else if (d.mode === "out") {
      const frames = model.media.get(c.media)?.frames ?? c.source_out;
      let end = clipEnd(c) + df;
      end += snap([end], model.edges(c.track, c.id), reach);
      d.source_out = Math.max(c.source_in + 1, Math.min(frames, c.source_out + end - clipEnd(c)));
    } else {
      // the in edge: the clip starts later (or earlier) in time and in its media alike
      let position = c.position + df;
      position += snap([position], model.edges(c.track, c.id), reach);
      const shift = Math.max(-Math.min(c.source_in, c.position), position - c.position);
      const delta = Math.min(shift, clipLength(c) - 1);
      d.source_in = c.source_in + delta;
      d.position = c.position + delta;
    }
    this.place();
  }

  // The element where the drag has it now (onto the lane of its track).
  place() {
    const d = this.active;
    const ppf = this.host.ppf();
    d.element.style.left = `${d.position * ppf}px`;
    d.element.style.width = `${Math.max(2, (d.source_out - d.source_in) * ppf)}px`;
    const lane = this.host.lanes().find((l) => l.dataset.track === d.track);
    if (lane && d.element.parentElement !== lane) lane.append(d.element);
    const free = this.host.model.free(d.track, d.position, d.source_out - d.source_in, d.clip.id);
    d.element.classList.toggle("blocked", !free);
  }

  trackAt(y) {
    for (const lane of this.host.lanes()) {
      const r = lane.getBoundingClientRect();
      if (y >= r.top && y < r.bottom) return lane.dataset.track;
    }
    return null;
  }

  up(e) {
    const d = this.active;
    if (!d) return;
    this.release();
    if (!d.moved) {
      this.host.select(d.clip.id, Boolean(e?.shiftKey));
      return;
    }
    const c = d.clip;
    d.element.classList.add("pending");
    if (d.mode === "move") {
      if (d.position === c.position && d.track === c.track) return this.host.draw();
      const args = { id: c.id, position: d.position };
      if (d.track !== c.track) args.track = d.track;
      this.host.edit("move_clip", args);
    } else if (d.mode === "out") {
      if (d.source_out === c.source_out) return this.host.draw();
      this.host.edit("trim_clip", { id: c.id, source_out: d.source_out });
    } else {
      if (d.source_in === c.source_in) return this.host.draw();
      this.host.edit("trim_clip", { id: c.id, source_in: d.source_in, position: d.position });
    }
  }

  release() {
    const d = this.active;
    this.active = null;
    if (!d) return;
    d.element.onpointermove = d.element.onpointerup = d.element.onpointercancel = null;
    d.element.classList.remove("dragging", "blocked");
  }

  cancel() {
    if (!this.active) return;
    this.release();
    this.host.draw();
  }
}
