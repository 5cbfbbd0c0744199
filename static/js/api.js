// HTTP to the Seatmap API and the buyer's session.
//
// The session ({buyer_id, token} from POST /api/sessions) lives in
// localStorage, which browsers keep per origin, so each Seatmap server a
// buyer visits has its own. Every answer's `Date` header updates an estimate
// of the server's clock, so hold countdowns follow the server, not the device.

const SESSION_KEY = "seatmap:session";

export class ApiError extends Error {
  /** An answer in the contract's error shape: `code` is e.g. `seats_unavailable`. */
  constructor(status, body) {
    super(body?.details || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error || "unknown";
    this.body = body || {};
  }
}

export class NetworkError extends Error {
  /** The server could not be reached (offline, restarting, connection dropped). */
}

function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

export class Api {
  constructor(base = "") {
    this.base = base;
    this.session = null;
    this.skewMs = 0; // server clock minus this device's clock
    this._sessionPromise = null;
  }

  /** Milliseconds since the epoch on the server's clock (to within a second). */
  serverNow() {
    return Date.now() + this.skewMs;
  }

  async request(method, path, { body, auth = false, headers = {}, retries = 0 } = {}) {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    for (let attempt = 0; ; attempt++) {
      if (auth) init.headers.Authorization = `Bearer ${(await this.ensureSession()).token}`;
      const sent = Date.now();
      let response;
      try {
        response = await fetch(this.base + path, init);
      } catch (error) {
        if (attempt < retries) {
          await new Promise((resolve) => setTimeout(resolve, 400 * (attempt + 1)));
          continue;
        }
        throw new NetworkError(String(error?.message || error));
      }
      this._noteClock(response, sent, Date.now());
      if (response.status === 401 && auth && attempt === 0) {
        // The server no longer knows this session (e.g. its secret changed): start a new one.
        this.forgetSession();
        continue;
      }
      const text = response.status === 204 ? "" : await response.text();
      let data = null;
      if (text) {
        try {
          data = JSON.parse(text);
        } catch {
          data = { error: "bad_response", details: text.slice(0, 200) };
        }
      }
      if (!response.ok) throw new ApiError(response.status, data);
      return data;
    }
  }

  _noteClock(response, sent, received) {
    const date = Date.parse(response.headers.get("Date") || "");
    if (Number.isNaN(date)) return;
    // The header has whole seconds, and servers refresh it about once a
    // second (uvicorn on a 0.1 s tick every tenth tick, so a busy event loop
    // refreshes it a little late), so at some moment between `sent` and
    // `received` the server's clock read [date, date + 3 s). The 3 s has a
    // second of slack: with a tight 2 s a late refresh made the clock
    // estimate run behind and a fresh 5-minute hold read "5:01". That bounds the skew; the
    // bounds of all answers are intersected, and within them the device's
    // own clock is trusted (skew 0) when it can be.
    let lo = date - received, hi = date + 3000 - sent;
    if (this._skewBounds) {
      const [oldLo, oldHi] = this._skewBounds;
      if (Math.max(lo, oldLo) <= Math.min(hi, oldHi)) [lo, hi] = [Math.max(lo, oldLo), Math.min(hi, oldHi)];
      // else: a clock jumped; start again from this answer alone.
    }
    this._skewBounds = [lo, hi];
    this.skewMs = Math.min(hi, Math.max(lo, 0));
  }

  // ------------------------------------------------------------- session

  async ensureSession() {
    if (this.session) return this.session;
    if (!this._sessionPromise) {
      this._sessionPromise = (async () => {
        try {
          const stored = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
          if (stored?.token) return (this.session = stored);
        } catch {
          /* unreadable: make a new one */
        }
        const created = await this.request("POST", "/api/sessions", { retries: 2 });
        localStorage.setItem(SESSION_KEY, JSON.stringify(created));
        return (this.session = created);
      })().finally(() => (this._sessionPromise = null));
    }
    return this._sessionPromise;
  }

  /**
   * Is our token still good? A browser cannot read why a websocket upgrade
   * was refused, so after failed upgrades the page asks over HTTP: a 401
   * (the server's secret changed) makes a new session on the spot; the
   * expected answer for a good token is 404 (there is no such hold).
   */
  async checkSession() {
    try {
      await this.request("GET", "/api/holds/session-check", { auth: true });
    } catch {
      /* 404: the token is good; anything else: the next attempt will tell */
    }
  }

  /** The stored session, without making one (pages that only read what this browser bought). */
  storedSession() {
    try {
      const stored = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
      return stored?.token ? stored : null;
    } catch {
      return null;
    }
  }

  forgetSession() {
    this.session = null;
    localStorage.removeItem(SESSION_KEY);
  }

  // ------------------------------------------------------------- routes

  listEvents() {
    return this.request("GET", "/api/events", { retries: 2 });
  }

  getEvent(eventId) {
    return this.request("GET", `/api/events/${encodeURIComponent(eventId)}`, { retries: 2 });
  }

  holdSeats(eventId, seats) {
    // Retrying is safe: seats already ours count as granted.
    return this.request("POST", `/api/events/${encodeURIComponent(eventId)}/holds`, {
      body: { seats },
      auth: true,
      retries: 1,
    });
  }

  holdBest(eventId, { count, tier, section }) {
    const body = { count };
    if (tier) body.tier = tier;
    if (section) body.section = section;
    // The idempotency key makes a retry answer the seats picked the first time.
    return this.request("POST", `/api/events/${encodeURIComponent(eventId)}/holds`, {
      body,
      auth: true,
      retries: 1,
      headers: { "Idempotency-Key": newKey() },
    });
  }

  getHold(holdId) {
    return this.request("GET", `/api/holds/${encodeURIComponent(holdId)}`, { auth: true, retries: 1 });
  }

  release(holdId, seats) {
    const query = seats ? `?seats=${seats.map(encodeURIComponent).join(",")}` : "";
    return this.request("DELETE", `/api/holds/${encodeURIComponent(holdId)}${query}`, { auth: true, retries: 1 });
  }

  checkout(holdId) {
    // Safe to retry: calling it again answers the same order.
    return this.request("POST", `/api/holds/${encodeURIComponent(holdId)}/checkout`, { auth: true, retries: 1 });
  }

  getOrder(orderId) {
    return this.request("GET", `/api/orders/${encodeURIComponent(orderId)}`, { auth: true, retries: 1 });
  }

  /** The buyer's orders; with `eventId`, only those for that event. */
  listOrders({ eventId } = {}) {
    const query = eventId ? `?event_id=${encodeURIComponent(eventId)}` : "";
    return this.request("GET", `/api/orders${query}`, { auth: true, retries: 1 });
  }

  async liveUrl(eventId, { epoch, since } = {}) {
    const session = await this.ensureSession();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams({ compact: "1", token: session.token });
    if (epoch != null && since != null) {
      params.set("epoch", epoch);
      params.set("since", String(since));
    }
    return `${scheme}//${location.host}/ws/events/${encodeURIComponent(eventId)}?${params}`;
  }
}
