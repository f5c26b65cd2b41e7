// An outside client of a lumiera instance, written from docs/PROTOCOL.md alone
// (issue 16): if this script needs more than the document says, the document
// is wrong. ZeroMQ (`zeromq` v6) and msgpack (`@msgpack/msgpack`) only.
//
//   node client.mjs RUNTIME_DIR INSTANCE [--stop] [--timeout SECONDS]
//
// It subscribes to `events` first (it may be started before the instance: a
// ZeroMQ connect to a path that is not there yet keeps retrying), waits for the
// instance to be `running`, then on `control`:
//   - `status` to appstate (DEALER, and once through a REQ socket), every key
//     and type of the reply checked against 8.2;
//   - `add_track` to the session with a `command_id`, its answer (8.4) and the
//     matching `session.changed` event checked, then the same command again,
//     which must answer the first answer plus `duplicate: true`; `timeline`
//     must show the track;
//   - `describe` of the session (8.3, 8.4);
//   - bad requests: an unknown command (to the session and to appstate), an
//     unknown subsystem, unknown or mistyped arguments, three unreadable
//     messages and a kind a client may not send, each answered with the
//     documented code and message (sections 3.3, 4.2, 8, 9);
//   - with --stop: `stop` to appstate, then the shutdown's events, which must be
//     exactly those of 10.3, in that order, ending with `appstate.phase done`.
// Every event received is checked against its topic's body (10.1), and those
// of the start-up must come in the order of 10.3 (some may have been missed).
// Prints one JSON line; exits 0 when everything matched, 1 on any mismatch,
// 2 on a usage error.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

import { decode, encode } from "@msgpack/msgpack";
import * as zmq from "zeromq";

class Mismatch extends Error {}

const checks = [];
function check(cond, what) {
  if (!cond) throw new Mismatch(what);
  checks.push(what);
}
const show = (v) => JSON.stringify(v);
// Key order in a map does not matter (3.2): compare maps with sorted keys.
const canon = (v) =>
  JSON.stringify(v, (_k, x) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );

// ---- arguments -------------------------------------------------------------

const argv = process.argv.slice(2);
const positional = [];
let doStop = false;
let totalS = 60;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--stop") doStop = true;
  else if (argv[i] === "--timeout") totalS = Number(argv[++i]);
  else positional.push(argv[i]);
}
if (positional.length !== 2 || !(totalS > 0)) {
  process.stderr.write("usage: node client.mjs RUNTIME_DIR INSTANCE [--stop] [--timeout S]\n");
  process.exit(2);
}
const [rundir, instance] = positional;
const deadline = Date.now() + totalS * 1000;
const REQUEST_S = 10; // longer than the default [bus] request_timeout (13.3)

// ---- msgpack (3.1, 3.2) ----------------------------------------------------

// Every map key at every depth is a str (3.2); no extension types at all.
const decodeOptions = {
  mapKeyConverter: (key) => {
    if (typeof key !== "string") throw new Mismatch(`a map key is not a str: ${key}`);
    return key;
  },
};

function plain(value, path, depth) {
  if (depth > 32) throw new Mismatch(`${path}: nests deeper than 32`);
  if (value === null || ["boolean", "number", "string"].includes(typeof value)) return;
  if (value instanceof Uint8Array) return; // bin
  if (Array.isArray(value)) {
    value.forEach((v, i) => plain(v, `${path}[${i}]`, depth + 1));
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) plain(v, `${path}.${k}`, depth + 1);
    return;
  }
  throw new Mismatch(`${path}: not a plain msgpack value (an extension type?): ${value}`);
}

function unpack(frame, what) {
  let value;
  try {
    value = decode(frame, decodeOptions); // throws on trailing bytes too
  } catch (e) {
    throw new Mismatch(`${what}: not one msgpack object: ${e.message}`);
  }
  check(isMap(value), `${what} is a msgpack map`);
  plain(value, what, 0);
  return value;
}

const isMap = (v) =>
  v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype;

// The field types of 3.3 / 8.2 / 10.1, as far as JavaScript can tell them apart
// (a float64 that holds a whole number decodes as a JS integer).
const T = {
  str: (v) => typeof v === "string",
  name: (v) => typeof v === "string" && [...v].length <= 64,
  id: (v) => typeof v === "string" && [...v].length <= 128,
  text: (v) => typeof v === "string" && [...v].length <= 65536,
  int: (v) => Number.isInteger(v),
  float: (v) => typeof v === "number",
  bool: (v) => typeof v === "boolean",
  map: isMap,
  list: Array.isArray,
  any: () => true,
};
const orNil = (t) => (v) => v === null || t(v);

// `spec`: {field: [type, required]}; exactly these keys (optional ones may be absent).
function shape(obj, spec, what) {
  check(isMap(obj), `${what} is a map`);
  const extra = Object.keys(obj).filter((k) => !(k in spec));
  check(extra.length === 0, `${what} has no undeclared keys (found ${extra})`);
  for (const [key, [type, required]] of Object.entries(spec)) {
    if (!(key in obj)) {
      check(!required, `${what} has '${key}'`);
      continue;
    }
    check(type(obj[key]), `${what}.${key} has its declared type (got ${show(obj[key])})`);
  }
}

// ---- sockets ---------------------------------------------------------------

const endpoint = (name) => `ipc://${join(rundir, name)}`;
const sockets = [];

function socket(Kind) {
  const s = new Kind({ linger: 0 });
  sockets.push(s);
  return s;
}

// Events: one background loop, everything received kept in order.
const events = [];
let eventWaiter = null;
const sub = socket(zmq.Subscriber);
sub.reconnectInterval = 10; // started before the instance: it binds within 0.2 s of running (5)
sub.connect(endpoint("events"));
for (const prefix of ["lifecycle.", "appstate.", "subsystem.", "session."]) sub.subscribe(prefix);
process.stderr.write("subscribed\n"); // so a caller may start the instance now
(async () => {
  try {
    for await (const frames of sub) {
      events.push(checkEvent(frames));
      if (eventWaiter) eventWaiter();
    }
  } catch (e) {
    if (!sub.closed) fail(e);
  }
})();

// Control: one DEALER; answers are matched by id (4.3, 4.4).
const dealer = socket(zmq.Dealer);
dealer.connect(endpoint("control"));
const answers = [];
let answerWaiter = null;
(async () => {
  try {
    for await (const frames of dealer) {
      check(frames.length === 1, `a DEALER receives one frame per answer (got ${frames.length})`);
      answers.push(frames[0]);
      if (answerWaiter) answerWaiter();
    }
  } catch (e) {
    if (!dealer.closed) fail(e);
  }
})();

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(take, seconds, what, wake) {
  const end = Math.min(Date.now() + seconds * 1000, deadline);
  for (;;) {
    const got = take();
    if (got !== undefined) return got;
    if (Date.now() >= end) throw new Mismatch(`timed out waiting for ${what}`);
    await new Promise((resolve) => {
      const t = setTimeout(resolve, Math.min(50, Math.max(1, end - Date.now())));
      wake(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
const waitEvent = (take, seconds, what) =>
  until(take, seconds, what, (f) => {
    eventWaiter = f;
  });

// The reply/error envelope of section 7, checked strictly.
function checkAnswer(msg, what) {
  check(msg.v === 1 && Number.isInteger(msg.v), `${what}: v is the integer 1`);
  check(msg.kind === "reply" || msg.kind === "error", `${what}: kind is reply or error (got ${msg.kind})`);
  if (msg.kind === "reply") shape(msg, { v: [T.int, true], kind: [T.str, true], id: [T.id, true], result: [T.any, false] }, what);
  else shape(msg, { v: [T.int, true], kind: [T.str, true], id: [orNil(T.id), true], code: [T.name, true], message: [T.text, true] }, what);
  return msg;
}

let counter = 0;
const nextId = () => `node-${process.pid}-${++counter}`;

// Send one frame; wait for the answer whose id is `id` (or, with `nilId`, an
// error with a nil id), skipping others (4.3).
async function roundTrip(frame, id, what, nilId = false) {
  await dealer.send(frame);
  return until(
    () => {
      while (answers.length) {
        const msg = checkAnswer(unpack(answers.shift(), what), what);
        if (msg.id === id && id !== null) return msg;
        if (nilId && msg.id === null) return msg;
        checks.push(`${what}: skipped an answer with another id (${msg.id})`);
      }
      return undefined;
    },
    REQUEST_S,
    `the answer to ${what}`,
    (f) => {
      answerWaiter = f;
    },
  );
}

async function request(to, command, args = {}) {
  const id = nextId();
  const msg = await roundTrip(encode({ v: 1, kind: "request", id, to, command, args }), id, `${to} ${command}`);
  return msg;
}

async function ok(to, command, args = {}) {
  const msg = await request(to, command, args);
  check(msg.kind === "reply", `${to} ${command} is answered with a reply (got ${show(msg)})`);
  return msg.result;
}

async function refused(to, command, args, code, message) {
  const msg = await request(to, command, args);
  check(msg.kind === "error", `${to} ${command} is answered with an error`);
  check(msg.code === code, `${to} ${command}: code ${code} (got ${msg.code})`);
  if (message instanceof RegExp) check(message.test(msg.message), `${to} ${command}: message ${message} (got ${show(msg.message)})`);
  else check(msg.message === message, `${to} ${command}: message ${show(message)} (got ${show(msg.message)})`);
  return msg;
}

// ---- events (5, 10.1) --------------------------------------------------------

const PHASES = ["starting", "opening", "running", "closing", "stopping", "emergency", "done"];
const STATES = ["starting", "running", "stopping", "stopped", "failed", "waiting"];
const LIFECYCLE = [
  "ON_BASIC_INIT", "ON_GLOBAL_INIT", "ON_SESSION_START", "ON_SESSION_INIT", "ON_SESSION_READY",
  "ON_SESSION_CLOSE", "ON_SESSION_END", "ON_GLOBAL_SHUTDOWN", "ON_EMERGENCY_EXIT",
];
const envelope = { sender: [T.name, true], ts: [T.float, true] };

function checkEvent(frames) {
  check(frames.length === 2, `an event is two frames (got ${frames.length})`);
  const topic = frames[0].toString("latin1");
  check(/^[\x21-\x7e]{1,256}$/.test(topic), `topic ${show(topic)} is 1-256 printable ASCII bytes`);
  const body = unpack(frames[1], `event ${topic}`);
  const what = `event ${topic}`;
  const parts = topic.split(".");
  if (parts[0] === "lifecycle") {
    check(parts.length === 2 && LIFECYCLE.includes(parts[1]), `${what} is a documented lifecycle event`);
    if (parts[1] === "ON_EMERGENCY_EXIT") {
      shape(body, { ...envelope, event: [T.name, true], subsystem: [T.name, true], exit_code: [orNil(T.int), true], signal: [orNil(T.int), true], reason: [T.text, true] }, what);
    } else {
      shape(body, { ...envelope, event: [T.name, true] }, what);
    }
    check(body.event === parts[1], `${what}: event is the topic's last segment`);
    check(body.sender === "appstate", `${what}: sender is appstate`);
  } else if (topic === "appstate.phase") {
    shape(body, { ...envelope, phase: [T.name, true] }, what);
    check(PHASES.includes(body.phase), `${what}: a documented phase (${body.phase})`);
    check(body.sender === "appstate", `${what}: sender is appstate`);
  } else if (topic === "appstate.shutdown") {
    shape(body, { ...envelope, reason: [T.text, true] }, what);
  } else if (topic === "appstate.problem") {
    shape(body, { ...envelope, message: [T.text, true] }, what);
  } else if (parts[0] === "subsystem") {
    check(parts.length === 3, `${what} is subsystem.<name>.<state>`);
    shape(body, { ...envelope, name: [T.name, true], state: [T.name, true], pid: [orNil(T.int), true], reason: [orNil(T.text), false] }, what);
    check(body.name === parts[1] && body.state === parts[2], `${what}: name and state are the topic's`);
    check(STATES.includes(body.state), `${what}: a documented state`);
    check(body.sender === "appstate", `${what}: sender is appstate`);
  } else if (topic === "session.changed") {
    // `args?` and `applied?`: left out when together they pack to more than 256 KiB (8.4).
    shape(body, { ...envelope, command: [T.name, true], id: [T.id, true], revision: [T.int, true], args: [orNil(T.map), false], applied: [orNil(T.map), false] }, what);
    check(body.sender === "session", `${what}: sender is session`);
  } else {
    throw new Mismatch(`an event of a topic not subscribed to: ${topic}`);
  }
  return { topic, body };
}

const label = (e) =>
  e.topic === "appstate.phase" ? `appstate.phase:${e.body.phase}` : e.topic;

// 10.3: is `seen` (labels) a subsequence of `expected`, in order?
function inOrder(seen, expected, what) {
  let at = 0;
  for (const s of seen) {
    const found = expected.indexOf(s, at);
    check(found >= 0, `${what}: ${s} comes in the documented order (seen ${show(seen)})`);
    at = found + 1;
  }
}

// ---- status (8.2) ------------------------------------------------------------

const options = { session: [orNil(T.str), true], headless: [T.bool, true], scripts: [T.list, true], port: [orNil(T.int), true], debug: [orNil(T.str), true], join: [orNil(T.str), true] };
const emergencySpec = { subsystem: [T.str, true], exit_code: [orNil(T.int), true], signal: [orNil(T.int), true], reason: [T.str, true] };
const subsystemSpec = {
  name: [T.str, true], layer: [T.str, true], pid: [orNil(T.int), true], state: [T.str, true],
  debug: [T.bool, true], uptime_s: [orNil(T.float), true], heartbeat_age_s: [orNil(T.float), true],
  last_failure: [orNil(T.str), true], exit: [orNil(T.str), true], cpu_s: [orNil(T.float), true],
  rss_bytes: [orNil(T.int), true],
};
const LAYERS = { engine: "vault", session: "steam", player: "steam", gui: "stage", script: "stage", netnode: "vault" };

function checkStatus(st, what) {
  shape(st, {
    instance: [T.str, true], pid: [T.int, true], phase: [T.str, true], runtime_dir: [T.str, true],
    uptime_s: [T.float, true], options: [T.map, true], errors: [T.list, true],
    emergency: [orNil(T.map), true], subsystems: [T.list, true], rings: [T.list, true],
  }, what);
  check(st.instance === instance, `${what}: instance is ${instance}`);
  check(st.runtime_dir === rundir, `${what}: runtime_dir is the explicit directory itself (2.1)`);
  check(PHASES.includes(st.phase), `${what}: a documented phase`);
  shape(st.options, options, `${what}.options`);
  check(st.errors.every(T.str), `${what}.errors are strings`);
  if (st.emergency !== null) shape(st.emergency, emergencySpec, `${what}.emergency`);
  st.subsystems.forEach((s, i) => {
    shape(s, subsystemSpec, `${what}.subsystems[${i}]`);
    check(LAYERS[s.name] === s.layer, `${what}: ${s.name} is of layer ${LAYERS[s.name]}`);
    check(STATES.includes(s.state), `${what}: ${s.name} is in a documented state`);
  });
  return st;
}

// ---- the run -----------------------------------------------------------------

function fail(e) {
  const message = e instanceof Mismatch ? e.message : `${e?.stack ?? e}`;
  process.stdout.write(`${JSON.stringify({ ok: false, error: message, checks: checks.length, last_check: checks.at(-1) ?? null })}\n`);
  process.exit(1);
}

async function main() {
  // 2.2/2.3: the control socket and the lock file exist (the lock itself needs
  // flock(2), which plain Node cannot call: the status answer proves the rest).
  await until(
    () => (existsSync(join(rundir, "control")) && existsSync(join(rundir, "lock")) ? true : undefined),
    30, `${rundir}/control and lock`, () => {},
  );
  // Ask status until the phase is running (the events may have been missed, 5).
  let status;
  for (;;) {
    status = checkStatus(await ok("appstate", "status"), "status");
    if (status.phase === "running") break;
    check(["starting", "opening"].includes(status.phase), `status: the instance is starting (phase ${status.phase})`);
    if (Date.now() > deadline) throw new Mismatch("the instance never became running");
    await sleep(100);
  }
  const names = status.subsystems.map((s) => s.name);
  check(status.subsystems.every((s) => s.state === "running" && T.int(s.pid)), "status: every subsystem running, with a pid");
  check(names.includes("session"), "the instance runs a session");

  const pidText = readFileSync(join(rundir, "appstate.pid"), "latin1");
  check(pidText === `${status.pid}\n`, `appstate.pid holds the supervisor's pid and a newline (2.2)`);

  // The start-up events seen so far must follow 10.3 (a prefix may be missing).
  await waitEvent(
    () => (events.some((e) => label(e) === "appstate.phase:running") ? true : undefined),
    2, "appstate.phase running (published before status says running)",
  ).catch(() => undefined); // a client that subscribed late may not see it: lossy (5)
  const startup = events.map(label);
  inOrder(startup, [
    "lifecycle.ON_BASIC_INIT", "appstate.phase:starting", "lifecycle.ON_GLOBAL_INIT",
    ...names.map((n) => `subsystem.${n}.running`),
    "appstate.phase:opening", "lifecycle.ON_SESSION_START", "lifecycle.ON_SESSION_INIT",
    "lifecycle.ON_SESSION_READY", "appstate.phase:running",
  ], "start-up events");
  const seenBefore = events.length;

  // A REQ socket: the same body, the socket adds the empty delimiter (4.1).
  const req = socket(zmq.Request);
  req.receiveTimeout = REQUEST_S * 1000;
  req.connect(endpoint("control"));
  const reqId = nextId();
  await req.send(encode({ v: 1, kind: "request", id: reqId, to: "appstate", command: "status" }));
  const [reqFrame, ...moreFrames] = await req.receive();
  check(moreFrames.length === 0, "REQ receives one body");
  const viaReq = checkAnswer(unpack(reqFrame, "status via REQ"), "status via REQ");
  check(viaReq.kind === "reply" && viaReq.id === reqId, "status via REQ (args omitted) is a reply with its id");
  checkStatus(viaReq.result, "status via REQ");
  req.close();

  // appstate ping (8.2).
  const pong = await ok("appstate", "ping");
  shape(pong, { pong: [T.bool, true], name: [T.str, true], pid: [T.int, true], ts: [T.float, true] }, "appstate ping");
  check(pong.pong === true && pong.name === "appstate" && pong.pid === status.pid, "appstate ping answers pong, appstate, its pid");

  // A session command (8.4), with a command_id; then the same again.
  const trackName = `outside-node-${process.pid}`;
  const commandId = `node-${process.pid}-add-track`;
  const added = await ok("session", "add_track", { name: trackName, command_id: commandId });
  shape(added, { id: [T.id, true], command: [T.name, true], revision: [T.int, true], applied: [T.map, true] }, "add_track answer");
  check(added.id === commandId, "add_track answer: id is the command_id sent (8.4)");
  check(added.command === "add_track", "add_track answer: command is add_track");
  check(added.revision > 0, "add_track answer: a positive revision");
  check(added.applied.name === trackName, "add_track answer: applied.name is the name sent");
  check(T.str(added.applied.id) && added.applied.id.length > 0, "add_track answer: applied.id is the new track's id");
  const trackId = added.applied.id;
  const changed = await waitEvent(
    () => events.find((e, i) => i >= seenBefore && e.topic === "session.changed" && e.body.revision === added.revision),
    5, "session.changed of the add_track",
  );
  check(changed.body.command === "add_track", "session.changed: command add_track");
  check(changed.body.id === added.id, `session.changed: id is the answer's id (${added.id} vs ${changed.body.id})`);
  check("args" in changed.body && "applied" in changed.body, "session.changed of a small command has args and applied");
  check(canon(changed.body.args) === canon({ name: trackName }), "session.changed: args as sent, without command_id");
  if (changed.body.applied) check(canon(changed.body.applied) === canon(added.applied), "session.changed: applied is the answer's");

  const again = await ok("session", "add_track", { name: trackName, command_id: commandId });
  check(again.duplicate === true, "the retried add_track answers duplicate: true");
  const { duplicate: _d, ...firstAgain } = again;
  check(canon(firstAgain) === canon(added),
    `the retried add_track answers the first answer (${show(again)} vs ${show(added)})`);

  const timeline = await ok("session", "timeline");
  check(isMap(timeline) && Array.isArray(timeline.tracks), "session timeline has tracks");
  const tracks = timeline.tracks.filter((t) => t.id === trackId);
  check(tracks.length === 1, "the timeline has the new track once (the duplicate added nothing)");
  shape(tracks[0], { id: [T.str, true], name: [T.str, true], kind: [T.str, true] }, "the new track");
  check(tracks[0].name === trackName && tracks[0].kind === "video", "the new track: its name, kind video");
  check(timeline.revision === added.revision, "the timeline's revision is the add_track's");

  // session describe (8.3, 8.4): the common keys, every command, the session.
  const described = await ok("session", "describe");
  const common = { name: T.str, summary: T.str, pid: T.int, attached: T.bool, uptime_s: orNil(T.float), commands: T.map };
  for (const [key, type] of Object.entries(common)) check(key in described && type(described[key]), `session describe: ${key}`);
  check(described.name === "session" && described.pid === status.subsystems.find((s) => s.name === "session").pid, "session describe: its name and pid");
  for (const c of ["add_track", "remove_track", "undo", "redo", "describe", "timeline", "history", "ping", "fault"]) check(c in described.commands, `session describe lists ${c}`);
  check(described.durable === false, "session describe: durable is false without a session file");
  check(isMap(described.session) && T.int(described.session.journal_rows) && "file" in described.session, "session describe: session with file and journal_rows");
  check(described.session.tracks.some((t) => t.id === trackId), "session describe: the session has the new track");

  // Bad requests, each with its documented answer.
  const sessionUnknown = await refused("session", "no_such_command", {}, "unknown_command", /^session has no command 'no_such_command' \(has: (.*)\)$/);
  const has = /\(has: (.*)\)$/.exec(sessionUnknown.message)[1].split(", ");
  check(show(has) === show([...has].sort()), "the list of commands is sorted");
  // Only the commands of 8.3 and the session's queries: the edit commands are
  // not in this list (a known limitation, 17).
  for (const c of ["describe", "fault", "ping", "timeline", "history"]) check(has.includes(c), `session lists ${c}`);
  await refused("appstate", "no_such_command", {}, "unknown_command", "appstate has no command 'no_such_command' (has: create_ring, ping, status, stop)");
  await refused("nosuch", "ping", {}, "unknown_subsystem", `no subsystem 'nosuch' in this instance (has: ${["appstate", ...names].join(", ")})`);
  await refused("appstate", "status", { x: 1 }, "bad_args", "status: unknown argument(s) x");
  await refused("session", "ping", { x: 1 }, "bad_args", "ping: unknown argument(s) x");
  await refused("session", "add_track", { name: 5 }, "bad_args", "add_track.name: int is not str");
  const badVersion = await roundTrip(encode({ v: 2, kind: "request", id: "x", to: "appstate", command: "status", args: {} }), null, "v 2", true);
  check(badVersion.kind === "error" && badVersion.id === null && badVersion.code === "bad_message", "v 2: bad_message with a nil id");
  check(badVersion.message === "protocol version 2 is not supported (want 1)", `v 2: the documented message (got ${show(badVersion.message)})`);
  const noTo = await roundTrip(encode({ v: 1, kind: "request", id: "y", command: "status" }), null, "no to", true);
  check(noTo.kind === "error" && noTo.id === null && noTo.code === "bad_message", "request without to: bad_message with a nil id");
  check(noTo.message === "request: missing field 'to'", `request without to: the documented message (got ${show(noTo.message)})`);
  const announced = events.filter((e) => e.topic === "session.changed" && e.body.id === commandId);
  check(announced.length === 1, `the add_track is announced once, its duplicate not (${announced.length})`);
  const extraField = await roundTrip(encode({ v: 1, kind: "request", id: "z", to: "appstate", command: "status", args: {}, bogus: 1 }), null, "an unknown field", true);
  check(extraField.kind === "error" && extraField.id === null && extraField.code === "bad_message", "request with an unknown field: bad_message with a nil id");
  check(extraField.message === "request: unknown field(s) bogus", `request with an unknown field: the documented message (got ${show(extraField.message)})`);
  const heartbeat = await roundTrip(encode({ v: 1, kind: "heartbeat" }), null, "a heartbeat from a client", true);
  check(heartbeat.kind === "error" && heartbeat.id === null && heartbeat.code === "bad_message", "heartbeat from a client: bad_message with a nil id (4.2)");
  check(heartbeat.message === "heartbeat is not accepted from a client", `heartbeat from a client: the documented message (got ${show(heartbeat.message)})`);
  const still = checkStatus(await ok("appstate", "status"), "status after the bad requests");
  check(still.phase === "running" && still.errors.length === 0, "still running, no errors recorded");

  const summary = {
    ok: true, instance, pid: status.pid, subsystems: names, startup_events: startup,
    track: { id: trackId, name: trackName }, revision: added.revision, command_id: commandId,
    answer_id: added.id, session_changed: changed.body.id,
    errors_checked: ["unknown_command", "unknown_command", "unknown_subsystem", "bad_args", "bad_args", "bad_args", "bad_message", "bad_message", "bad_message", "bad_message"],
  };

  if (doStop) {
    const from = events.length;
    const stopping = await ok("appstate", "stop");
    shape(stopping, { stopping: [T.bool, true], pid: [T.int, true] }, "stop answer");
    check(stopping.stopping === true && stopping.pid === status.pid, "stop answers stopping: true and the supervisor's pid");
    await waitEvent(
      () => (events.slice(from).some((e) => label(e) === "appstate.phase:done") ? true : undefined),
      30, "appstate.phase done",
    );
    const shutdown = events.slice(from).map(label);
    const expected = [
      "appstate.shutdown", "appstate.phase:closing", "lifecycle.ON_SESSION_CLOSE", "lifecycle.ON_SESSION_END",
      "appstate.phase:stopping",
      ...[...names].reverse().flatMap((n) => [`subsystem.${n}.stopping`, `subsystem.${n}.stopped`]),
      "lifecycle.ON_GLOBAL_SHUTDOWN", "appstate.phase:done",
    ];
    check(show(shutdown) === show(expected), `the shutdown's events are those of 10.3 (${show(shutdown)})`);
    const reason = events.slice(from).find((e) => e.topic === "appstate.shutdown").body.reason;
    check(reason === "stop requested", "appstate.shutdown: reason stop requested");
    summary.shutdown_events = shutdown;
    summary.stopped = true;
  }
  summary.checks = checks.length;
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

const watchdog = setTimeout(() => fail(new Mismatch(`not done within ${totalS} s`)), totalS * 1000 + 2000);
main()
  .then(() => {
    clearTimeout(watchdog);
    for (const s of sockets) if (!s.closed) s.close();
    process.exit(0);
  })
  .catch(fail);
