// The application: one UI-Bus, the pages (dashboard, edit = viewer + timeline, event
// log), and what belongs to no page: notes, marks, the emergency banner, quit.

import { UiBus } from "./uibus.js";
import { mountDashboard } from "./dashboard.js";
import { mountTimeline } from "./timeline.js";
import { mountLog } from "./log.js";

const NOTE_LIMIT = 8; // notes shown at once; the oldest goes first
const INFO_NOTE_MS = 15000; // an info note fades after this; warnings and errors stay

const $ = (selector) => document.querySelector(selector);

let log = null; // the event log, once mounted: problems before that go to the console
const bus = new UiBus({
  onProblem: (text) => (log ? log.problem(text) : console.warn(text)),
});
window.lumiera = { bus }; // for the console and the tests

// -- tabs ------------------------------------------------------------------------------

const pages = { visible: new Map() }; // tab -> callbacks told when it shows or hides

function showTab(name) {
  if (!document.querySelector(`[data-page="${name}"]`)) name = "dashboard";
  for (const page of document.querySelectorAll("[data-page]")) {
    page.hidden = page.dataset.page !== name;
  }
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.classList.toggle("active", tab.dataset.tab === name);
    tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  }
  for (const [tab, callbacks] of pages.visible) {
    for (const cb of callbacks) cb(tab === name);
  }
}

function whenVisible(tab, callback) {
  if (!pages.visible.has(tab)) pages.visible.set(tab, []);
  pages.visible.get(tab).push(callback);
}

window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));

// -- notes and marks (the GUI Notification facade) -------------------------------------

function showNote({ level, text, sender }) {
  const notes = $("#notes");
  const note = document.createElement("div");
  note.className = `note ${level}`;
  note.setAttribute("role", level === "error" ? "alert" : "status");
  const body = document.createElement("span");
  body.className = "note-text";
  body.textContent = text;
  const from = document.createElement("span");
  from.className = "note-sender";
  from.textContent = sender ? `${level} from ${sender}` : level;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "note-close";
  close.title = "Dismiss";
  close.textContent = "×";
  close.onclick = () => note.remove();
  note.append(from, body, close);
  notes.prepend(note);
  while (notes.children.length > NOTE_LIMIT) notes.lastElementChild.remove();
  if (level === "info") setTimeout(() => note.remove(), INFO_NOTE_MS);
}

const MARK_CLASSES = ["mark-error", "mark-warning", "mark-info", "mark-selected"];
const marks = new Map(); // element id -> mark, kept for elements drawn later

function applyMarks(element) {
  const id = element.dataset.id;
  element.classList.remove(...MARK_CLASSES);
  const mark = marks.get(id);
  if (mark) element.classList.add(`mark-${mark}`);
}

function setMark({ id, mark }) {
  if (mark === "none") marks.delete(id);
  else marks.set(id, mark);
  for (const element of document.querySelectorAll("[data-id]")) {
    if (element.dataset.id === id) applyMarks(element);
  }
}

// An element drawn after its mark came (a re-drawn clip) gets it too.
new MutationObserver((records) => {
  if (marks.size === 0) return;
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      if (node.dataset.id !== undefined) applyMarks(node);
      for (const inner of node.querySelectorAll("[data-id]")) applyMarks(inner);
    }
  }
}).observe(document.body, { childList: true, subtree: true });

// -- the connection, the emergency and the end ----------------------------------------

let ending = null; // why the application ends, once known: the banner keeps saying it

function showEmergency({ reason, subsystem }) {
  ending = "emergency";
  const banner = $("#emergency");
  banner.replaceChildren();
  const title = document.createElement("strong");
  title.textContent = subsystem ? `Emergency: ${subsystem} failed` : "Emergency";
  const text = document.createElement("span");
  text.className = "emergency-reason";
  text.textContent = reason;
  banner.append(title, text);
  banner.className = "emergency";
  banner.hidden = false;
}

function showEnded(text) {
  const banner = $("#emergency");
  banner.replaceChildren(text);
  banner.className = "emergency ended";
  banner.hidden = false;
}

function showPhase(phase) {
  $("#phase").textContent = phase;
  $("#phase").className = `phase ${phase}`;
  $("#quit").disabled = ending !== null || !bus.connected || !["running", "opening"].includes(phase);
}

function connectionChanged(state) {
  const indicator = $("#connection");
  indicator.className = `connection ${state}`;
  indicator.textContent = state === "open" ? "connected" : "disconnected, retrying…";
  document.body.classList.toggle("offline", state !== "open");
  if (state === "open") {
    $("#instance").textContent = bus.hello.instance;
    document.title = `Lumiera: ${bus.hello.instance}`;
    if (ending) {
      ending = null;
      $("#emergency").hidden = true;
    }
  } else if (ending === "quit") {
    showEnded("Lumiera has ended (quit). This page reconnects if it comes back.");
  }
  // Whatever the last status said is no longer known; an ending says how it went.
  if (state !== "open") showPhase({ quit: "ended", emergency: "emergency" }[ending] ?? "unreachable");
}

function quit() {
  if (!bus.connected) return;
  ending = "quit";
  showPhase("closing");
  bus.send("quit", { ref: 0 });
  showEnded("Quitting: the application ends in order…");
}

// -- start -----------------------------------------------------------------------------

async function mountViewer(root) {
  try {
    const module = await import("./viewer.js");
    const viewer = module.mountViewer(root, bus);
    if (viewer && typeof viewer.setVisible === "function") {
      whenVisible("edit", (shown) => viewer.setVisible(shown));
      viewer.setVisible(!$('[data-page="edit"]').hidden);
    }
  } catch (e) {
    console.error(e);
    root.replaceChildren();
    const box = document.createElement("div");
    box.className = "unavailable";
    box.textContent = `viewer unavailable: ${e.message ?? e}`;
    root.append(box);
    if (log) log.problem(`viewer unavailable: ${e}`);
  }
}

function main() {
  log = mountLog($("#log"), bus);
  mountDashboard($("#dashboard"), bus);
  const timeline = mountTimeline($("#timeline"), bus);
  whenVisible("edit", (shown) => timeline.setVisible(shown));
  bus.on("note", (m) => {
    showNote(m);
    log.entry("note", `${m.level}: ${m.text}`, m.sender);
  });
  bus.on("mark", (m) => {
    setMark(m);
    log.entry("mark", `${m.id}: ${m.mark}`, "");
  });
  bus.on("emergency", (m) => {
    showEmergency(m);
    showPhase("emergency");
    log.entry("emergency", m.reason, m.subsystem);
  });
  bus.on("status", (m) => showPhase(m.status.phase ?? ""));
  bus.on("event", (m) => m.topic === "appstate.phase" && showPhase(m.body.phase));
  bus.subscribe("app", ["appstate.phase"]);
  bus.onConnection(connectionChanged);
  $("#quit").onclick = quit;
  showTab(location.hash.slice(1) || "dashboard");
  mountViewer($("#viewer"));
  bus.start();
}

main();
