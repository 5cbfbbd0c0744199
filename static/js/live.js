// The live seat map over websocket: snapshot, then diffs; resume after a
// drop; reconnect with jittered exponential backoff.
//
// Two parts, as in the server's sans-I/O habit:
// - `SeatFeed` applies frames to a Uint8Array of seat states (layout order)
//   and says what the caller must do: redraw these seats, or resynchronise.
//   It never touches the network, so it can be reasoned about (and tested)
//   frame by frame.
// - `LiveConnection` owns the socket, the backoff and the connection status
//   shown to the buyer.

export const AVAILABLE = 0;
export const HELD = 1;
export const BOOKED = 2;
export const STATE_NAMES = ["available", "held", "booked"];
const FROM_CHAR = { a: AVAILABLE, h: HELD, b: BOOKED };
const FROM_WORD = { available: AVAILABLE, held: HELD, booked: BOOKED };

export class SeatFeed {
  constructor(venue) {
    this.venue = venue;
    this.states = new Uint8Array(venue.size);
    this.epoch = null;
    this.version = null;
  }

  get synced() {
    return this.version !== null;
  }

  /**
   * Apply one server frame. Returns one of
   *   {kind: "snapshot"}                      every seat may have changed
   *   {kind: "diff", changed: [indices]}      these seats changed
   *   {kind: "resumed"}                        a resume caught up
   *   {kind: "resync", resume: bool}           history broken: reconnect (resuming from our version if `resume`)
   *   {kind: "other", frame}                   not about seat state (pong, replies)
   */
  receive(frame) {
    switch (frame.type) {
      case "snapshot":
        this._snapshot(frame);
        return { kind: "snapshot" };
      case "diff":
        if (frame.epoch !== this.epoch) return { kind: "resync", resume: false };
        if (frame.version <= this.version) return { kind: "diff", changed: [] }; // already applied
        if (frame.prev !== this.version) return { kind: "resync", resume: true };
        this.version = frame.version;
        return { kind: "diff", changed: this._apply(frame.changes) };
      case "resumed":
        if (frame.epoch !== this.epoch || frame.version !== this.version) return { kind: "resync", resume: false };
        return { kind: "resumed" };
      default:
        return { kind: "other", frame };
    }
  }

  _snapshot(frame) {
    const states = this.states;
    if (typeof frame.states === "string") {
      const text = frame.states;
      for (let i = 0; i < states.length; i++) states[i] = FROM_CHAR[text[i]] ?? AVAILABLE;
    } else {
      states.fill(AVAILABLE);
      this._apply(frame.seats || {});
    }
    this.epoch = frame.epoch;
    this.version = frame.version;
  }

  _apply(changes) {
    const changed = [];
    const index = this.venue.index;
    for (const id in changes) {
      const i = index.get(id);
      if (i === undefined) continue;
      this.states[i] = FROM_WORD[changes[id]] ?? AVAILABLE;
      changed.push(i);
    }
    return changed;
  }

  /** Where to resume from, or null for a fresh snapshot. */
  position() {
    return this.synced ? { epoch: this.epoch, since: this.version } : null;
  }

  forget() {
    this.epoch = null;
    this.version = null;
  }
}

// Close codes that mean "come back right away and resume" (docs/protocol.md).
const CLOSE_TOO_SLOW = 4000;
const CLOSE_SERVICE_RESTART = 1012;

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30000;
const OFFLINE_AFTER_ATTEMPTS = 4;
const PING_EVERY_MS = 25000;
const PONG_WITHIN_MS = 10000;

/** Equal-jitter exponential backoff: half the step for sure, half at random. */
export function backoffDelay(attempt, random = Math.random) {
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return step / 2 + random() * (step / 2);
}

export class LiveConnection {
  /**
   * `onSeats(changed | null)`: seats changed (null: all of them);
   * `onStatus({status, detail, retryAt})`: connecting | live | reconnecting | offline;
   * `onSnapshot()`: a snapshot replaced every state (the caller re-checks its hold).
   */
  constructor(api, venue, { onSeats, onStatus, onSnapshot } = {}) {
    this.api = api;
    this.feed = new SeatFeed(venue);
    this.onSeats = onSeats || (() => {});
    this.onStatus = onStatus || (() => {});
    this.onSnapshot = onSnapshot || (() => {});
    this.socket = null;
    this.status = "connecting";
    this.attempt = 0;
    this.timer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.stopped = false;
    this.unopened = 0; // upgrades in a row that failed before opening
    this.stats = { connects: 0, snapshots: 0, diffs: 0, resumes: 0, resyncs: 0, closes: [] };
    addEventListener("online", () => this.status !== "live" && this.reconnectNow());
    addEventListener("offline", () => this.socket?.close());
  }

  start() {
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this._stopPing();
    this.socket?.close(1000);
  }

  /** Reconnect at once (the buyer pressed "Retry now", or the network came back). */
  reconnectNow() {
    clearTimeout(this.timer);
    if (this.socket) {
      this.socket.close(); // its close handler reconnects
      return;
    }
    this._connect();
  }

  _setStatus(status, detail = {}) {
    this.status = status;
    this.onStatus({ status, ...detail });
  }

  async _connect() {
    if (this.stopped) return;
    this.timer = null;
    const position = this.feed.position();
    let url;
    try {
      url = await this.api.liveUrl(this.feed.venue.id, position || {});
    } catch {
      this._retry(); // no session yet: the server is unreachable
      return;
    }
    const socket = new WebSocket(url);
    this.socket = socket;
    this.stats.connects++;
    socket.onmessage = (message) => this._onMessage(socket, message);
    socket.onclose = (event) => this._onClose(socket, event);
    socket.onopen = () => {
      socket.opened = true;
      this.unopened = 0;
      this._startPing(socket);
    };
  }

  _onMessage(socket, message) {
    if (socket !== this.socket) return;
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    const result = this.feed.receive(frame);
    switch (result.kind) {
      case "snapshot":
        this.stats.snapshots++;
        this._nowLive();
        this.onSeats(null);
        this.onSnapshot();
        break;
      case "diff":
        this.stats.diffs++;
        if (result.changed.length) this.onSeats(result.changed);
        break;
      case "resumed":
        this.stats.resumes++;
        this._nowLive();
        break;
      case "resync":
        // A gap in the chain or a new epoch: reconnect, resuming when we can.
        this.stats.resyncs++;
        if (!result.resume) this.feed.forget();
        this._drop(socket, "the live feed skipped a step; catching up");
        break;
      case "other":
        if (frame.type === "pong") clearTimeout(this.pongTimer);
        break;
    }
  }

  _nowLive() {
    this.attempt = 0;
    if (this.status !== "live") this._setStatus("live");
  }

  _drop(socket, reason) {
    if (socket !== this.socket) return;
    this.socket = null;
    this._stopPing();
    socket.onmessage = socket.onclose = socket.onopen = null;
    socket.close(1000);
    this._setStatus("reconnecting", { reason });
    this._schedule(0);
  }

  _onClose(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    this._stopPing();
    this.stats.closes.push(event.code);
    if (this.stopped) return;
    if (!socket.opened && ++this.unopened >= 2) {
      // Refused twice before opening: perhaps our token is no longer valid.
      this.unopened = 0;
      this.api.checkSession();
    }
    if (event.code === CLOSE_TOO_SLOW || event.code === CLOSE_SERVICE_RESTART) {
      // "Resume now": a little jitter so a restarted server is not hit by everyone at once.
      this._setStatus("reconnecting", {
        reason: event.code === CLOSE_TOO_SLOW ? "the connection fell behind" : "the server is restarting",
      });
      this._schedule(Math.random() * 500);
      return;
    }
    this._retry();
  }

  _retry() {
    const delay = backoffDelay(this.attempt);
    this.attempt++;
    const offline = navigator.onLine === false || this.attempt > OFFLINE_AFTER_ATTEMPTS;
    this._setStatus(offline ? "offline" : "reconnecting", {
      reason: navigator.onLine === false ? "this device is offline" : "the connection was lost",
      retryAt: Date.now() + delay,
    });
    this._schedule(delay);
  }

  _schedule(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connect(), delay);
  }

  // A half-open connection (a sleeping laptop, a dead NAT entry) can look
  // open for minutes: an application ping that goes unanswered ends it.
  _startPing(socket) {
    this._stopPing();
    let n = 0;
    this.pingTimer = setInterval(() => {
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.send(JSON.stringify({ type: "ping", ref: `p${++n}` }));
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => this._drop(socket, "the server stopped answering"), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  _stopPing() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  /** For tests and debugging: close the socket from the page side, as a network drop would. */
  dropForTest() {
    this.socket?.close(4001, "dropped by the page");
  }
}
