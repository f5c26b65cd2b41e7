// The dashboard: every subsystem (state, pid, uptime, heartbeat age, CPU, memory) from
// the `status` the GUI pushes every second, state changes at once from `subsystem.*`
// events, the rings from `stats.<ring>`, the engine from `stats.engine`, the Player's
// streams from `stats.player`. Nothing here polls: the pushed status is the clock.

const STALE_S = 3; // stats.player comes only while the Player has streams

export function fmtDuration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  e.append(...children.map((c) => (c instanceof Node ? c : String(c))));
  return e;
}

function table(headers) {
  const t = el("table", { class: "grid" });
  t.append(el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))));
  t.append(el("tbody"));
  return t;
}

export function mountDashboard(root, bus) {
  root.replaceChildren(
    el("h2", {}, "Instance"),
    el("div", { class: "summary", id: "dash-summary" }, "waiting for the first status…"),
    el("div", { class: "errors", id: "dash-errors", hidden: "" }),
    el("h2", {}, "Subsystems"),
    table(["subsystem", "layer", "state", "pid", "uptime", "heartbeat", "CPU", "memory", "note"]),
    el("h2", {}, "Frame rings"),
    table(["ring", "policy", "fill", "frames", "drops", "consumers", "size"]),
    el("h2", {}, "Engine and Player"),
    el("div", { class: "summary", id: "dash-engine" }, "no engine statistics yet"),
    table(["stream", "mode", "state", "frame", "frames", "fps", "dropped", "ring"])
  );
  const [subsTable, ringsTable, streamsTable] = root.querySelectorAll("table");
  subsTable.id = "subsystems";
  ringsTable.id = "rings";
  streamsTable.id = "streams";

  let status = null; // the last status
  let before = null; // the one before: CPU use is the difference
  const rings = new Map(); // name -> the latest stats.<ring> body (or status entry)
  let player = { streams: [], at: 0 }; // the latest stats.player, and when (status uptime)

  function cpuPercent(sub) {
    if (!before || sub.cpu_s === null || sub.cpu_s === undefined) return null;
    const old = before.subsystems.find((s) => s.name === sub.name && s.pid === sub.pid);
    const dt = status.uptime_s - before.uptime_s;
    if (!old || old.cpu_s === null || old.cpu_s === undefined || dt <= 0) return null;
    return (100 * (sub.cpu_s - old.cpu_s)) / dt;
  }

  function drawSubsystems() {
    const body = subsTable.tBodies[0];
    body.replaceChildren();
    for (const s of status.subsystems) {
      const cpu = cpuPercent(s);
      const cpuText =
        s.cpu_s === null || s.cpu_s === undefined
          ? "–"
          : `${cpu === null ? "" : `${cpu.toFixed(0)} % · `}${s.cpu_s.toFixed(1)} s`;
      const heartbeat = s.heartbeat_age_s;
      const row = el(
        "tr",
        { dataset: { subsystem: s.name }, class: `state-${s.state}` },
        el("td", { class: "name" }, s.name),
        el("td", {}, s.layer ?? ""),
        el("td", { class: "state" }, el("span", { class: `badge ${s.state}` }, s.state)),
        el("td", { class: "pid" }, s.pid ?? "–"),
        el("td", {}, fmtDuration(s.uptime_s)),
        el(
          "td",
          { class: heartbeat !== null && heartbeat > 2 ? "late" : "" },
          heartbeat === null || heartbeat === undefined ? "–" : `${heartbeat.toFixed(2)} s`
        ),
        el("td", { class: "cpu" }, cpuText),
        el("td", { class: "memory" }, fmtBytes(s.rss_bytes)),
        el("td", { class: "note-cell" }, [s.debug ? "debug" : "", s.last_failure ?? ""].join(" "))
      );
      body.append(row);
    }
  }

  function drawRings() {
    const body = ringsTable.tBodies[0];
    body.replaceChildren();
    if (rings.size === 0) {
      body.append(el("tr", {}, el("td", { colspan: "7", class: "empty" }, "no rings yet")));
    }
    for (const r of rings.values()) {
      const fill = el("div", { class: "fill" });
      fill.style.width = `${(100 * r.fill) / Math.max(1, r.slots)}%`;
      const consumers = r.consumers ?? [];
      body.append(
        el(
          "tr",
          { dataset: { ring: r.name } },
          el("td", { class: "name" }, r.name),
          el("td", {}, r.policy),
          el(
            "td",
            { class: "fill-cell", title: `${r.fill} of ${r.slots} slots to read` },
            el("div", { class: "meter" }, fill),
            ` ${r.fill}/${r.slots}`
          ),
          el("td", { class: "frames" }, r.frames_written),
          el("td", { class: r.drops ? "drops late" : "drops" }, r.drops),
          el("td", {}, `${consumers.filter((c) => c.alive).length} of ${consumers.length}`),
          el("td", {}, fmtBytes(r.size_bytes))
        )
      );
    }
  }

  function drawStreams() {
    const body = streamsTable.tBodies[0];
    body.replaceChildren();
    const fresh = status && status.uptime_s - player.at <= STALE_S;
    const streams = fresh ? player.streams : [];
    if (streams.length === 0) {
      body.append(el("tr", {}, el("td", { colspan: "8", class: "empty" }, "no player streams")));
    }
    for (const s of streams) {
      body.append(
        el(
          "tr",
          { dataset: { stream: s.id } },
          el("td", { class: "name" }, s.id),
          el("td", {}, s.mode),
          el("td", {}, el("span", { class: `badge ${s.state}` }, s.state)),
          el("td", {}, s.frame),
          el("td", {}, `${s.frames} of ${s.count}`),
          el("td", {}, Number(s.fps).toFixed(1)),
          el("td", { class: s.dropped ? "late" : "" }, s.dropped),
          el("td", {}, s.ring ?? s.output ?? "")
        )
      );
    }
  }

  function drawSummary() {
    const s = status;
    const summary = root.querySelector("#dash-summary");
    summary.replaceChildren(
      el("span", {}, "instance ", el("b", {}, s.instance)),
      el("span", {}, "phase ", el("b", { class: `phase ${s.phase}` }, s.phase)),
      el("span", {}, "supervisor pid ", el("b", {}, s.pid)),
      el("span", {}, "uptime ", el("b", {}, fmtDuration(s.uptime_s)))
    );
    const errors = root.querySelector("#dash-errors");
    const lines = [...(s.errors ?? [])];
    if (s.emergency) lines.unshift(`emergency: ${s.emergency.subsystem}: ${s.emergency.reason}`);
    errors.hidden = lines.length === 0;
    errors.replaceChildren(...lines.map((l) => el("div", {}, l)));
  }

  function drawEngine(body) {
    const jobs = body.jobs ?? {};
    const cache = body.cache ?? {};
    const parts = [
      `${body.workers} workers`,
      `${body.queued} queued`,
      `jobs ${jobs.done ?? 0} done, ${jobs.missed ?? 0} missed, ${jobs.failed ?? 0} failed`,
      `cache ${fmtBytes(cache.bytes ?? 0)} of ${fmtBytes(cache.max_bytes ?? 0)}` +
        ` (${cache.hits ?? 0} hits, ${cache.misses ?? 0} misses)`,
      `${(body.streams ?? []).length} engine streams`,
    ];
    root.querySelector("#dash-engine").replaceChildren(...parts.map((p) => el("span", {}, p)));
  }

  bus.on("status", (m) => {
    before = status;
    status = m.status;
    for (const r of status.rings ?? []) if (!rings.has(r.name)) rings.set(r.name, r);
    drawSummary();
    drawSubsystems();
    drawRings();
    drawStreams();
  });

  bus.on("event", ({ topic, body }) => {
    if (topic.startsWith("subsystem.") && status) {
      const sub = status.subsystems.find((s) => s.name === body.name);
      if (sub) {
        sub.state = body.state;
        sub.pid = body.pid ?? null;
        if (body.reason) sub.last_failure = body.reason;
        drawSubsystems();
      }
    } else if (topic === "stats.engine") {
      drawEngine(body);
    } else if (topic === "stats.player") {
      player = { streams: body.streams ?? [], at: status ? status.uptime_s : 0 };
      drawStreams();
    } else if (topic.startsWith("stats.") && body.slots !== undefined) {
      rings.set(body.name, body);
      drawRings();
    }
  });

  bus.subscribe("dashboard", ["stats.", "subsystem."]);
  return {};
}
