// The live feed (/api/live) in "latest" mode, for maps: frames are JSON arrays of
// messages; the socket reconnects with a growing delay and says so through onState.
export class LiveFeed {
  constructor({ onMessage, onState = () => {}, onUnauthorized = () => {}, maxRateS = 1 }) {
    Object.assign(this, { onMessage, onState, onUnauthorized, maxRateS });
    this.delay = 1000;
    this.closed = false;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/api/live?mode=latest&max_rate_s=${this.maxRateS}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    this.onState("connecting");
    ws.onopen = () => {
      this.delay = 1000;
      this.onState("live");
    };
    ws.onmessage = (event) => {
      const data = JSON.parse(event.data);
      for (const message of Array.isArray(data) ? data : [data]) this.onMessage(message);
    };
    ws.onclose = (event) => {
      if (this.closed) return;
      if (event.code === 4001) {
        this.onState("signed out");
        this.onUnauthorized();
        return;
      }
      this.onState("reconnecting");
      this.timer = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 30000);
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }
}
