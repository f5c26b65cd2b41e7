// The page's end of the UI-Bus: one websocket (/ws, same origin, the cookie
// authenticates), every message checked against the declaration the server
// serves (/uibus.json, made from lumiera/stage/gui/uibus.py), both ways.
//
//   const bus = new UiBus({onProblem: text => ...});
//   bus.start();                            // loads /uibus.json, connects, reconnects
//   bus.on("note", msg => ...);             // a down kind; returns an unsubscribe function
//   bus.onBinary(buffer => ...);            // viewer pictures (ArrayBuffer: FRAME_HEADER + JPEG)
//   bus.onConnection(state => ...);         // "open" (after hello) | "closed"
//   bus.send("viewer_ack", {frame: 12});    // an up kind; false when not sent (logged why)
//   await bus.request("session", "add_track", {name: "V2"});  // result, or rejects {code, message}
//   await bus.ask("clock", {page_ms: ...}); // any up kind with a ref, answered by a reply
//   bus.subscribe("dashboard", ["stats.", "subsystem."]);     // topic prefixes, per owner
//
// An invalid message from the server is reported (onProblem) and dropped; an
// invalid one from the page is not sent (send returns false, request rejects
// with code "bad_message"). A dropped connection is retried with a backoff of
// RETRY_MIN_MS doubling to RETRY_MAX_MS, for as long as the page is open.

export const RETRY_MIN_MS = 250;
export const RETRY_MAX_MS = 5000;
export const REQUEST_TIMEOUT_MS = 30000; // add_media probes a file; a render answers once it runs
export const FRAME_HEADER_BYTES = 16; // little-endian int64 frame, float64 publish time (s)

// One JSON type of the schema ("number", "string|null", "any", ...) against a value.
function typeOk(spec, value) {
  if (spec === "any") return true;
  return spec.split("|").some((t) => {
    switch (t) {
      case "null":
        return value === null;
      case "boolean":
        return typeof value === "boolean";
      case "number":
        return typeof value === "number" && Number.isFinite(value);
      case "string":
        return typeof value === "string";
      case "array":
        return Array.isArray(value);
      case "object":
        return value !== null && typeof value === "object" && !Array.isArray(value);
      default:
        return false;
    }
  });
}

function kindOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

// Why `message` (with its "type") breaks the schema going `up` (true: page -> server), or null.
export function invalid(schema, message, up) {
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    return `a UI-Bus message is an object, not ${kindOf(message)}`;
  }
  const decl = schema.kinds[message.type];
  if (decl === undefined || decl.up !== up) {
    return `unknown UI-Bus message type ${JSON.stringify(message.type)}${
      decl ? ` (it goes ${decl.up ? "up" : "down"})` : ""
    }`;
  }
  for (const [name, field] of Object.entries(decl.fields)) {
    if (!(name in message)) {
      if (field.required) return `${message.type}: missing field '${name}'`;
      continue;
    }
    if (!typeOk(field.type, message[name])) {
      return `${message.type}.${name}: ${kindOf(message[name])} is not ${field.type}`;
    }
  }
  const unknown = Object.keys(message).filter((k) => k !== "type" && !(k in decl.fields));
  if (unknown.length) return `${message.type}: unknown field(s) ${unknown.sort().join(", ")}`;
  if (message.type === "command" && !(schema.allowed?.[message.to] ?? []).includes(message.command)) {
    return `${message.to} ${message.command} is not a command a page may send`;
  }
  return null;
}

export class UiBus {
  constructor({ base = "", onProblem = (text) => console.warn(text) } = {}) {
    this.base = base; // "" = same origin
    this.onProblem = onProblem;
    this.schema = null;
    this.hello = null; // the last hello (instance, server_ms, allowed)
    this.helloAt = 0; // performance.now() when it came
    this.ws = null;
    this.connected = false;
    this.invalidCount = 0; // dropped incoming messages (tests read it)
    this._handlers = new Map(); // kind -> Set of handlers
    this._binary = new Set();
    this._connection = new Set();
    this._pending = new Map(); // ref -> {resolve, reject, timer}
    this._ref = 0;
    this._subs = new Map(); // owner -> prefixes
    this._retry = RETRY_MIN_MS;
    this._timer = null;
    this._stopped = false;
  }

  // -- the API -------------------------------------------------------------------------

  on(kind, handler) {
    if (!this._handlers.has(kind)) this._handlers.set(kind, new Set());
    this._handlers.get(kind).add(handler);
    return () => this._handlers.get(kind).delete(handler);
  }

  onBinary(handler) {
    this._binary.add(handler);
    return () => this._binary.delete(handler);
  }

  onConnection(handler) {
    this._connection.add(handler);
    return () => this._connection.delete(handler);
  }

  // Send one up kind; false (and the reason reported) when invalid or not connected.
  send(kind, fields = {}) {
    const message = { type: kind, ...fields };
    const why = this.schema ? invalid(this.schema, message, true) : "the schema is not loaded";
    if (why) {
      this._problem(`not sent: ${why}`);
      return false;
    }
    if (!this.connected) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  // Send an up kind that carries a ref; resolves with the reply's result, rejects with
  // {code, message} on ok=false, a dropped connection ("disconnected") or no reply in time.
  ask(kind, fields = {}, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    const ref = ++this._ref;
    return new Promise((resolve, reject) => {
      if (!this.connected) {
        reject({ code: "disconnected", message: "not connected to the GUI" });
        return;
      }
      const message = { type: kind, ref, ...fields };
      const why = invalid(this.schema, message, true);
      if (why) {
        this._problem(`not sent: ${why}`);
        reject({ code: "bad_message", message: why });
        return;
      }
      const timer = setTimeout(() => {
        this._pending.delete(ref);
        reject({ code: "timeout", message: `no reply to ${kind} in ${timeoutMs / 1000} s` });
      }, timeoutMs);
      this._pending.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify(message));
    });
  }

  request(to, command, args = {}, options = {}) {
    return this.ask("command", { to, command, args }, options);
  }

  // Topic prefixes per owner; the server gets their union (its subscribe replaces).
  subscribe(owner, prefixes) {
    this._subs.set(owner, [...prefixes]);
    this._sendSubscriptions();
  }

  // Server time (ms, time.monotonic() * 1000) now, estimated from the hello.
  serverNowMs() {
    if (!this.hello) return null;
    return this.hello.server_ms + (performance.now() - this.helloAt);
  }

  start() {
    this._stopped = false;
    this._connect();
    return this;
  }

  stop() {
    this._stopped = true;
    clearTimeout(this._timer);
    if (this.ws) this.ws.close();
  }

  // -- the connection ------------------------------------------------------------------

  async _connect() {
    this._timer = null;
    try {
      const response = await fetch(`${this.base}/uibus.json`, { cache: "no-store" });
      if (!response.ok) throw new Error(`/uibus.json: HTTP ${response.status}`);
      this.schema = await response.json();
    } catch (e) {
      this._problem(`cannot load the UI-Bus schema: ${e.message}`);
      this._again();
      return;
    }
    const url = new URL(`${this.base}/ws`, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onmessage = (e) => this._receive(e.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      const was = this.connected;
      this.connected = false;
      this._failPending();
      if (was) this._emitConnection("closed");
      this._again();
    };
  }

  _again() {
    if (this._stopped || this._timer !== null) return;
    this._timer = setTimeout(() => this._connect(), this._retry);
    this._retry = Math.min(this._retry * 2, RETRY_MAX_MS);
  }

  _receive(data) {
    if (typeof data !== "string") {
      for (const h of this._binary) this._call(h, data, "binary");
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch (e) {
      this._dropped(`not JSON: ${e.message}`);
      return;
    }
    const why = invalid(this.schema, message, false);
    if (why) {
      this._dropped(why);
      return;
    }
    if (message.type === "hello") {
      this.hello = message;
      this.helloAt = performance.now();
      this.connected = true;
      this._retry = RETRY_MIN_MS;
      this._sendSubscriptions();
      this._emitConnection("open");
    } else if (message.type === "reply") {
      const pending = this._pending.get(message.ref);
      if (pending) {
        this._pending.delete(message.ref);
        clearTimeout(pending.timer);
        if (message.ok) pending.resolve(message.result ?? null);
        else pending.reject({ code: message.code ?? "error", message: message.message ?? "" });
      } else if (!message.ok) {
        // a refusal of something sent without a ref (subscribe, viewer_ack, a bad message)
        this._problem(`the GUI refused a message: ${message.code}: ${message.message}`);
      }
    }
    for (const h of this._handlers.get(message.type) ?? []) this._call(h, message, message.type);
  }

  _sendSubscriptions() {
    if (!this.connected) return;
    const union = new Set();
    for (const prefixes of this._subs.values()) for (const p of prefixes) union.add(p);
    this.send("subscribe", { prefixes: [...union].sort() });
  }

  _failPending() {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject({ code: "disconnected", message: "the connection to the GUI dropped" });
    }
    this._pending.clear();
  }

  _emitConnection(state) {
    for (const h of this._connection) this._call(h, state, "connection");
  }

  // A handler that throws is reported; the others still run.
  _call(handler, value, what) {
    try {
      handler(value);
    } catch (e) {
      console.error(e);
      this._problem(`a ${what} handler failed: ${e}`);
    }
  }

  _dropped(why) {
    this.invalidCount += 1;
    this._problem(`dropped an invalid message: ${why}`);
  }

  _problem(text) {
    try {
      this.onProblem(text);
    } catch (e) {
      console.error(e);
    }
  }
}
