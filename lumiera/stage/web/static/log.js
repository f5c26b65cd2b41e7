// The event log: the bus's events as `lumiera tap` shows them, newest first, at most
// LOG_LIMIT entries, filtered by topic prefixes (the page subscribes to just those;
// empty: every topic);
// and what happens on the page itself: notes, marks, the emergency, dropped messages.

export const LOG_LIMIT = 500;
// What the log shows at first: everything but the once-a-second stats (type "stats." to see them).
export const DEFAULT_PREFIXES = "lifecycle. appstate. subsystem. session. engine. player. log. ext.";
const BODY_CHARS = 400; // a body longer than this is shown cut

function clock(tsSeconds) {
  const d = tsSeconds ? new Date(tsSeconds * 1000) : new Date();
  return d.toTimeString().slice(0, 8) + `.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

// "stats., subsystem." -> ["stats.", "subsystem."]; "" -> [""] (every topic)
export function parsePrefixes(text) {
  const list = text
    .split(/[\s,]+/)
    .map((p) => p.trim())
    .filter(Boolean);
  return list.length ? list : [""];
}

export function mountLog(root, bus) {
  root.innerHTML = `
    <div class="log-toolbar">
      <label>Topic prefixes
        <input class="log-filter" type="text" spellcheck="false"
               placeholder="every topic" />
      </label>
      <button type="button" class="log-pause">Pause</button>
      <button type="button" class="log-clear">Clear</button>
      <span class="log-count"></span>
    </div>
    <ol class="log-entries"></ol>`;
  const list = root.querySelector(".log-entries");
  const filter = root.querySelector(".log-filter");
  const pause = root.querySelector(".log-pause");
  const count = root.querySelector(".log-count");
  filter.value = DEFAULT_PREFIXES;
  let prefixes = parsePrefixes(DEFAULT_PREFIXES);
  let paused = false;
  let seen = 0;

  function add(kind, topic, sender, text, ts) {
    if (paused && kind === "event") return;
    const item = document.createElement("li");
    item.className = `entry ${kind}`;
    item.dataset.topic = topic;
    const parts = [
      ["time", clock(ts)],
      ["topic", topic],
      ["sender", sender ?? ""],
      ["body", text.length > BODY_CHARS ? `${text.slice(0, BODY_CHARS)}… [cut]` : text],
    ];
    for (const [cls, value] of parts) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = value;
      item.append(span);
    }
    list.prepend(item);
    while (list.children.length > LOG_LIMIT) list.lastElementChild.remove();
    seen += 1;
    count.textContent = `${seen} seen, ${list.children.length} shown`;
  }

  function refilter() {
    prefixes = parsePrefixes(filter.value);
    bus.subscribe("log", prefixes);
    for (const item of list.querySelectorAll("li.event")) {
      item.hidden = !prefixes.some((p) => item.dataset.topic.startsWith(p));
    }
  }

  bus.on("event", ({ topic, sender, ts, body }) => {
    // Others subscribe too (the dashboard): show only what this filter asks for.
    if (!prefixes.some((p) => topic.startsWith(p))) return;
    const text = topic.startsWith("log.") && body.line !== undefined ? body.line : JSON.stringify(body);
    add("event", topic, sender, text, ts);
  });
  filter.addEventListener("change", refilter);
  filter.addEventListener("keydown", (e) => e.key === "Enter" && refilter());
  pause.onclick = () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.classList.toggle("active", paused);
  };
  root.querySelector(".log-clear").onclick = () => {
    list.replaceChildren();
    count.textContent = "";
  };
  bus.subscribe("log", prefixes);

  return {
    // Something of the page itself (a note, a mark, a dropped message): always shown.
    entry(kind, text, sender) {
      add(`page page-${kind}`, `page.${kind}`, sender, text, 0);
    },
    problem(text) {
      console.warn(text);
      add("page page-problem", "page.problem", "uibus", text, 0);
    },
  };
}
