// The timeline: tracks and clips drawn to scale (absolutely placed elements whose
// data-id is the clip's, track's or media's id), kept current from `session` and
// `diff`. Every edit is a session command through bus.request; an error reply is
// shown on the error line and the drawing goes back to what the session holds.
// A click on the ruler seeks the Player (and plays if nothing plays). Audio tracks are
// shorter rows of sound clips (sound.js); crossfades are drawn over their overlap and
// made at a cut, selected with a clip beside it or its marker (crossfade.js).

import { TimelineModel, basename, clipLength, hasVideo } from "./tlmodel.js";
import { Ruler } from "./ruler.js";
import { ClipDrag } from "./clipdrag.js";
import { Playhead } from "./playhead.js";
import { gainText, markSound } from "./sound.js";
import { cutMarker, drawTransition } from "./crossfade.js";
import { showInspector } from "./inspector.js";
import { drawMediaList, hue } from "./medialist.js";

const ROW_PX = { video: 44, audio: 32 }; // a track's height (see style.css .tl-lane)
const MIN_PPF = 0.02; // zoom bounds: pixels per frame
const MAX_PPF = 40;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export function mountTimeline(root, bus) {
  root.innerHTML = `
    <div class="tl-toolbar">
      <span class="group">
        <input class="tl-media-path" type="text" spellcheck="false"
               placeholder="/path/to/media.mp4" aria-label="media file path" />
        <button type="button" class="tl-add-media">Add media</button>
      </span>
      <span class="group">
        <input class="tl-track-name" type="text" spellcheck="false" placeholder="track name"
               aria-label="new track's name" size="10" />
        <button type="button" class="tl-add-track">Add track</button>
        <button type="button" class="tl-add-audio-track" title="An audio track: sound only">
          Add audio track</button>
      </span>
      <span class="group">
        <button type="button" class="tl-undo" title="Undo (Ctrl+Z)">Undo</button>
        <button type="button" class="tl-redo" title="Redo (Ctrl+Shift+Z)">Redo</button>
        <button type="button" class="tl-delete" title="Remove the selected clip (Delete)" disabled>
          Delete clip</button>
      </span>
      <span class="group">
        <button type="button" class="tl-zoom-out" title="Zoom out">−</button>
        <button type="button" class="tl-zoom-fit" title="Fit the timeline">Fit</button>
        <button type="button" class="tl-zoom-in" title="Zoom in">+</button>
      </span>
      <span class="tl-revision" title="the session's revision shown"></span>
      <span class="tl-busy" hidden>working…</span>
    </div>
    <div class="tl-error" role="alert" hidden>
      <span class="tl-error-text"></span>
      <button type="button" class="tl-error-close" title="Dismiss">×</button>
    </div>
    <div class="tl-body">
      <aside class="tl-side">
        <h3>Media</h3>
        <ul class="tl-media"></ul>
        <h3 class="tl-inspector-title">Clip</h3>
        <div class="tl-inspector">Select a clip.</div>
      </aside>
      <div class="tl-grid">
        <div class="tl-corner"></div>
        <div class="tl-ruler" title="Click to seek the player"><canvas></canvas></div>
        <div class="tl-heads"></div>
        <div class="tl-scroll"><div class="tl-content"><div class="tl-playhead" hidden></div></div></div>
      </div>
    </div>`;
  const $ = (s) => root.querySelector(s);
  const model = new TimelineModel();
  const ui = {
    heads: $(".tl-heads"),
    scroll: $(".tl-scroll"),
    content: $(".tl-content"),
    playhead: $(".tl-playhead"),
    media: $(".tl-media"),
    inspector: $(".tl-inspector"),
    error: $(".tl-error"),
  };
  const state = { ppf: 1, autoFit: true, selected: null, track: null, busy: 0, visible: true };
  state.cut = null; // [a, b] ids of a selected cut, or null
  state.transition = null; // the selected transition's id, or null
  const ruler = new Ruler($(".tl-ruler"), {
    ppf: () => state.ppf,
    scroll: () => ui.scroll.scrollLeft,
    rate: () => model.rate,
    onSeek: (frame) => seek(frame),
  });

  // -- commands ------------------------------------------------------------------------

  function showError(text) {
    $(".tl-error-text").textContent = text;
    ui.error.hidden = false;
  }
  const clearError = () => (ui.error.hidden = true);
  $(".tl-error-close").onclick = clearError;

  function busy(delta) {
    state.busy += delta;
    $(".tl-busy").hidden = state.busy === 0;
  }

  async function request(command, args = {}) {
    busy(1);
    try {
      return await bus.request("session", command, args);
    } finally {
      busy(-1);
    }
  }

  function fail(text) {
    showError(text);
    draw();
  }

  // Run a session command: its result, or null with the error shown and the drawing reset.
  async function edit(command, args = {}) {
    try {
      const result = await request(command, args);
      clearError();
      return result;
    } catch (e) {
      fail(`${command} failed: ${e.code}: ${e.message}`);
      return null;
    }
  }

  async function seek(frame) {
    const played = playback();
    try {
      if (played) {
        const result = await bus.request("player", "seek", { frame });
        if (["running", "paused", "starting"].includes(result.state)) return;
      }
      await bus.request("player", "play", { first: frame });
    } catch (e) {
      if (played && e.code === "bad_args") {
        // outside the playing range: play from there instead
        try {
          await bus.request("player", "play", { first: frame });
          return;
        } catch (again) {
          e = again;
        }
      }
      showError(`seek to ${frame} failed: ${e.code}: ${e.message}`);
    }
  }

  async function addMedia() {
    const input = $(".tl-media-path");
    const path = input.value.trim();
    if (!path) return showError("add media: type the path of a media file first");
    if (await edit("add_media", { path })) input.value = "";
  }

  async function addTrack(kind = "video") {
    const input = $(".tl-track-name");
    const count = model.tracks.filter((t) => t.kind === kind).length;
    const name = input.value.trim() || `${kind === "audio" ? "A" : "V"}${count + 1}`;
    const result = await edit("add_track", { name, kind });
    if (result) {
      input.value = "";
      state.track = result.applied?.id ?? state.track;
    }
  }

  // A clip of all of `mediaId` on the chosen track (else the top one), after its last clip.
  // A media without pictures goes to the top audio track when a video track is chosen.
  function addClip(mediaId, track = null, position = null) {
    let target = track ?? state.track ?? model.tracks.at(-1)?.id;
    const pictureless = !hasVideo(model.media.get(mediaId));
    if (track === null && pictureless && model.track(target)?.kind === "video") {
      target = model.tracks.findLast((t) => t.kind === "audio")?.id ?? target;
    }
    if (!target) return showError("add clip: add a track first");
    const at = position ?? model.trackEnd(target);
    return edit("add_clip", { media: mediaId, track: target, position: Math.max(0, at) });
  }

  function removeSelected() {
    if (state.transition && model.transitions.has(state.transition)) {
      edit("remove_transition", { id: state.transition });
    } else if (state.selected && model.clips.has(state.selected)) {
      edit("remove_clip", { id: state.selected });
    }
  }

  // -- drawing -------------------------------------------------------------------------

  function fit() {
    const width = Math.max(200, ui.scroll.clientWidth - 20);
    const frames = Math.max(model.end() * 1.05, model.rate * 10);
    state.ppf = Math.min(MAX_PPF, Math.max(MIN_PPF, width / frames));
  }

  function zoom(factor) {
    state.autoFit = false;
    const center = (ui.scroll.scrollLeft + ui.scroll.clientWidth / 2) / state.ppf;
    state.ppf = Math.min(MAX_PPF, Math.max(MIN_PPF, state.ppf * factor));
    draw();
    ui.scroll.scrollLeft = center * state.ppf - ui.scroll.clientWidth / 2;
  }

  const drawMedia = () => drawMediaList(ui.media, model, addClip);

  function drawInspector() {
    const parts = { root: ui.inspector, title: $(".tl-inspector-title"), remove: $(".tl-delete") };
    showInspector(parts, { model, state, edit, select });
  }

  function drawClip(c) {
    const e = el("div", "clip");
    e.dataset.id = c.id;
    e.dataset.track = c.track;
    e.dataset.position = c.position;
    e.dataset.in = c.source_in;
    e.dataset.out = c.source_out;
    e.style.setProperty("--hue", hue(c.media));
    e.style.left = `${c.position * state.ppf}px`;
    e.style.width = `${Math.max(2, clipLength(c) * state.ppf)}px`;
    const media = model.media.get(c.media);
    const sounds = model.sounds(c);
    e.title =
      `${c.id}: ${media ? basename(media.path) : c.media} frames ${c.source_in}–${c.source_out} ` +
      `at ${c.position}, opacity ${Math.round(c.opacity * 100)} %` +
      `${sounds ? `, gain ${gainText(c.gain_db)}` : ""}\n` +
      "Drag to move, drag an edge to trim, Delete to remove.";
    e.classList.toggle("selected", c.id === state.selected || !!state.cut?.includes(c.id));
    const label = el("span", "clip-label", media ? basename(media.path) : c.media);
    const id = el("span", "clip-id", c.id);
    e.append(el("span", "handle in"), label, id, el("span", "handle out"));
    markSound(e, c, { sounds, soundOnly: model.soundOnly(c), ppf: state.ppf });
    const fadingIn = model.transitionsOf(c.id).find((x) => x.b === c.id);
    if (fadingIn) e.style.paddingLeft = `${model.overlap(fadingIn).length * state.ppf + 9}px`;
    if (c.opacity < 1) {
      const badge = el("span", "clip-opacity", `${Math.round(c.opacity * 100)} %`);
      badge.title = `opacity ${Math.round(c.opacity * 100)} %: select the clip to change it`;
      e.append(badge);
    }
    e.style.opacity = String(0.45 + 0.55 * c.opacity);
    return e;
  }

  function drawTracks() {
    ui.heads.replaceChildren();
    for (const lane of ui.content.querySelectorAll(".tl-lane")) lane.remove();
    const width = Math.max(ui.scroll.clientWidth, (model.end() + model.rate * 5) * state.ppf);
    ui.content.style.width = `${width}px`;
    const rows = model.tracks.reduce((sum, t) => sum + ROW_PX[t.kind], 0);
    ui.content.style.height = `${Math.max(ROW_PX.video, rows)}px`;
    if (!model.tracks.some((t) => t.id === state.track)) state.track = model.tracks.at(-1)?.id;
    for (const t of [...model.tracks].reverse()) {
      const head = el("div", `tl-head track ${t.kind}`);
      head.dataset.id = t.id;
      head.dataset.kind = t.kind;
      head.classList.toggle("chosen", t.id === state.track);
      head.title = `${t.name} (${t.id}, ${t.kind}): click to choose it for new clips`;
      const remove = el("button", "tl-remove-track", "×");
      remove.type = "button";
      remove.title = `Remove track ${t.name} and its clips`;
      remove.onclick = (e) => {
        e.stopPropagation();
        edit("remove_track", { id: t.id });
      };
      const meta = t.kind === "audio" ? `♪ ${t.id}` : t.id;
      head.append(el("span", "name", t.name), el("span", "meta", meta), remove);
      head.onclick = () => {
        state.track = t.id;
        drawTracks();
      };
      ui.heads.append(head);
      const lane = el("div", `tl-lane ${t.kind}`);
      lane.dataset.track = t.id;
      lane.dataset.kind = t.kind;
      lane.ondragover = (e) => e.preventDefault();
      lane.ondrop = (e) => {
        const id = e.dataTransfer.getData("text/x-lumiera-media");
        if (!id) return;
        e.preventDefault();
        const x = e.clientX - lane.getBoundingClientRect().left;
        addClip(id, t.id, Math.round(x / state.ppf));
      };
      const clips = model.clipsOn(t.id);
      for (const c of clips) lane.append(drawClip(c));
      drawCrossfades(lane, t, clips);
      ui.content.insertBefore(lane, ui.playhead);
    }
    if (model.tracks.length === 0) {
      const head = el("div", "tl-head empty", "No tracks: add one above.");
      ui.heads.append(head);
    }
  }

  // The lane's transitions over their overlaps, and a marker at each cut without one.
  function drawCrossfades(lane, t, clips) {
    // as a clip: 4px above and below (3px on an audio track), the lane's and its border
    const height = ROW_PX[t.kind] - (t.kind === "audio" ? 9 : 11);
    for (const x of model.transitionsOn(t.id)) {
      const hues = [hue(model.clips.get(x.a).media), hue(model.clips.get(x.b).media)];
      const selected = x.id === state.transition;
      lane.append(drawTransition(model, x, { ppf: state.ppf, height, hues, selected }) ?? "");
    }
    for (const c of clips) {
      for (const [a, b] of model.cutsOf(c.id)) {
        if (a.id !== c.id) continue;
        const selected = state.cut?.[0] === a.id && state.cut?.[1] === b.id;
        lane.append(cutMarker(a, b, state.ppf, selected));
      }
    }
  }

  // Select one thing: {clip}, {cut: [a, b]} or {transition}; nothing when empty.
  function select({ clip = null, cut = null, transition = null } = {}) {
    Object.assign(state, { selected: clip, cut, transition });
    draw();
  }

  function draw() {
    if (drag.active) return; // drawn when the drag ends
    if (state.autoFit) fit();
    $(".tl-revision").textContent = model.revision === null ? "" : `revision ${model.revision}`;
    if (state.selected && !model.clips.has(state.selected)) state.selected = null;
    if (state.transition && !model.transitions.has(state.transition)) state.transition = null;
    const cut = state.cut && model.cutsOf(state.cut[0]).find(([, b]) => b.id === state.cut[1]);
    if (!cut) state.cut = null;
    drawMedia();
    drawTracks();
    drawInspector();
    playhead.update();
  }

  // -- clips: select, move, trim (clipdrag.js follows the pointer) ---------------------

  const drag = new ClipDrag({
    model,
    ppf: () => state.ppf,
    lanes: () => [...ui.content.querySelectorAll(".tl-lane")],
    // a click selects the clip; with Shift, beside the selected one: the cut between them
    select: (id, shift) => {
      const other = shift && state.selected;
      const cut = other && model.cutsOf(id).find(([a, b]) => [a.id, b.id].includes(other));
      select(cut ? { cut: cut.map((c) => c.id) } : { clip: id });
    },
    edit,
    draw: () => draw(),
  });
  ui.content.addEventListener("pointerdown", (e) => {
    const marker = e.target.closest(".tl-cut");
    const transition = e.target.closest(".transition");
    if (marker) select({ cut: [marker.dataset.a, marker.dataset.b] });
    else if (transition) select({ transition: transition.dataset.id });
    else drag.pointerDown(e);
  });

  // -- the playhead (playhead.js follows the Player) ----------------------------------

  const playhead = new Playhead(bus, (frame) => {
    ui.playhead.hidden = frame === null;
    if (frame !== null) ui.playhead.style.left = `${frame * state.ppf}px`;
    ruler.draw(frame);
  });
  const playback = () => playhead.stream();
  const playheadFrame = () => playhead.frame();

  // -- the session ---------------------------------------------------------------------

  bus.on("session", (m) => {
    model.load(m.timeline);
    draw();
  });
  bus.on("diff", async (d) => {
    if (model.apply(d)) {
      draw();
      return;
    }
    try {
      model.load(await bus.request("session", "timeline"));
      draw();
    } catch (e) {
      showError(`the timeline could not be brought up to date: ${e.code}: ${e.message}`);
    }
  });

  // -- controls and keys ---------------------------------------------------------------

  $(".tl-add-media").onclick = addMedia;
  $(".tl-media-path").addEventListener("keydown", (e) => e.key === "Enter" && addMedia());
  $(".tl-add-track").onclick = () => addTrack("video");
  $(".tl-add-audio-track").onclick = () => addTrack("audio");
  $(".tl-track-name").addEventListener("keydown", (e) => e.key === "Enter" && addTrack());
  $(".tl-undo").onclick = () => edit("undo");
  $(".tl-redo").onclick = () => edit("redo");
  $(".tl-delete").onclick = removeSelected;
  $(".tl-zoom-in").onclick = () => zoom(1.5);
  $(".tl-zoom-out").onclick = () => zoom(1 / 1.5);
  $(".tl-zoom-fit").onclick = () => {
    state.autoFit = true;
    draw();
  };
  ui.scroll.addEventListener("scroll", () => ruler.draw(playheadFrame()));
  new ResizeObserver(() => ruler.draw(playheadFrame())).observe($(".tl-ruler"));

  document.addEventListener("keydown", (e) => {
    // Keys typed into a field are the field's; a slider has no text to undo.
    if (!state.visible || e.target.closest("input:not([type=range]), textarea, select")) return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === "z") {
      e.preventDefault();
      edit(e.shiftKey ? "redo" : "undo");
    } else if ((e.ctrlKey || e.metaKey) && key === "y") {
      e.preventDefault();
      edit("redo");
    } else if (e.key === "Delete" || e.key === "Backspace") {
      if ((state.selected || state.transition) && !e.target.closest("input")) {
        e.preventDefault();
        removeSelected();
      }
    } else if (e.key === "Escape") {
      drag.cancel();
    }
  });

  draw();
  return {
    model,
    setVisible(shown) {
      state.visible = shown;
      playhead.setVisible(shown);
      if (shown) draw();
    },
  };
}
