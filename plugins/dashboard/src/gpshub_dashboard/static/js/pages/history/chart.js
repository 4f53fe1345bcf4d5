// The speed chart under the map (uPlot, loaded on demand): its cursor follows the
// player, and hovering it (while not playing) moves the player there.
import { h } from "../../dom.js";
import { load } from "../../lib.js";
import { session } from "../../session.js";

const HEIGHT = 160;

export class SpeedChart {
  constructor(root, points, onHover) {
    Object.assign(this, { root, points, onHover });
    this.u = null;
    this.syncing = false;
    this.closed = false;
    this.resize = () => this.u && this.u.setSize({ width: this.width(), height: HEIGHT });
  }

  width() {
    return Math.max(200, this.root.clientWidth || 600);
  }

  async draw() {
    const uPlot = await load("uplot");
    if (this.closed) return; // the page was left while uPlot loaded
    const p = this.points;
    const zone = session.timezone;
    const opts = {
      width: this.width(),
      height: HEIGHT,
      tzDate: zone ? (ts) => uPlot.tzDate(new Date(ts * 1e3), zone) : undefined,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(10, max || 0)] } },
      axes: [{}, { label: "km/h", size: 50 }],
      series: [{}, { label: "Speed", stroke: "#1f6feb", width: 1.5, fill: "rgba(31,111,235,.12)", spanGaps: false }],
      hooks: {
        setCursor: [
          (u) => {
            if (this.syncing || u.cursor.left === undefined || u.cursor.left < 0) return;
            this.onHover(u.posToVal(u.cursor.left, "x") * 1000);
          },
        ],
      },
    };
    const data = [p.t.map((t) => t / 1000), p.speed];
    this.root.replaceChildren();
    this.u = new uPlot(opts, data, this.root);
    this.root.dataset.ready = "1";
    window.addEventListener("resize", this.resize);
  }

  /** Put the cursor at time t (ms) without telling onHover. */
  show(t, index) {
    if (!this.u) return;
    const speed = this.points.speed[index];
    this.syncing = true;
    try {
      this.u.setCursor({ left: this.u.valToPos(t / 1000, "x"), top: speed === null ? 0 : this.u.valToPos(speed, "y") });
    } finally {
      this.syncing = false;
    }
  }

  close() {
    this.closed = true;
    window.removeEventListener("resize", this.resize);
    if (this.u) this.u.destroy();
  }
}

export function chartUnavailable(root, error) {
  root.replaceChildren(h("p.empty", `No speed chart: ${error.message || error}`));
}
