// Playback: a time slider over the track (scrubbing), play/pause and a speed (×1, ×10,
// ×60 the real time). `onTime(t, at)` is told every new time with the interpolated point.
import { h } from "../../dom.js";
import { dateTime, number } from "../../format.js";

const TICK_MS = 100;
export const SPEEDS = [1, 10, 60];

/** The index of the last point at or before `t` (points.t is sorted). */
export function indexAt(times, t) {
  let lo = 0;
  let hi = times.length - 1;
  if (t <= times[0]) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (times[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export class Player {
  constructor(points, onTime) {
    Object.assign(this, { points, onTime });
    this.start = points.t[0];
    this.end = points.t[points.t.length - 1];
    this.t = this.start;
    this.speed = 10;
    this.timer = null;
    this.playButton = h("button.play#play", { type: "button", onclick: () => this.toggle() }, "Play");
    // seconds from the first point: the slider's step is a second
    this.slider = h("input.slider#slider", {
      type: "range",
      min: 0,
      max: Math.max(1, Math.round((this.end - this.start) / 1000)),
      step: 1,
      value: 0,
      "aria-label": "Time",
    });
    this.slider.addEventListener("input", () => this.seek(this.start + Number(this.slider.value) * 1000, "slider"));
    this.speedSelect = h(
      "select#play-speed",
      { "aria-label": "Playback speed" },
      SPEEDS.map((s) => h("option", { value: s, selected: s === this.speed }, `×${s}`)),
    );
    this.speedSelect.addEventListener("change", () => (this.speed = Number(this.speedSelect.value)));
    this.clock = h("span.play-time#play-time");
    this.readout = h("span.play-speed#play-readout");
    this.root = h("div.player", this.playButton, this.speedSelect, this.slider, h("div.play-info", this.clock, this.readout));
  }

  /** The interpolated point at time t: {lat, lon, speed, course, index}. */
  at(t) {
    const p = this.points;
    const i = indexAt(p.t, t);
    const j = Math.min(i + 1, p.t.length - 1);
    const span = p.t[j] - p.t[i];
    const f = span > 0 ? Math.min(1, Math.max(0, (t - p.t[i]) / span)) : 0;
    return {
      index: i,
      lat: p.lat[i] + (p.lat[j] - p.lat[i]) * f,
      lon: p.lon[i] + (p.lon[j] - p.lon[i]) * f,
      speed: p.speed[i],
      course: p.course[i],
    };
  }

  /** Go to time `t`; `source` ("slider", "chart", "play") is passed on to onTime. */
  seek(t, source = "") {
    this.t = Math.min(this.end, Math.max(this.start, t));
    if (source !== "slider") this.slider.value = String(Math.round((this.t - this.start) / 1000));
    const at = this.at(this.t);
    this.clock.textContent = dateTime(this.t);
    this.readout.textContent = number(at.speed, 0, "km/h");
    this.onTime(this.t, at, source);
  }

  toggle() {
    if (this.timer) this.pause();
    else this.play();
  }

  play() {
    if (this.t >= this.end) this.t = this.start;
    let last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const t = this.t + (now - last) * this.speed;
      last = now;
      this.seek(t, "play");
      if (this.t >= this.end) this.pause();
    }, TICK_MS);
    this.playButton.textContent = "Pause";
    this.playButton.setAttribute("aria-pressed", "true");
  }

  get playing() {
    return this.timer !== null;
  }

  pause() {
    clearInterval(this.timer);
    this.timer = null;
    this.playButton.textContent = "Play";
    this.playButton.setAttribute("aria-pressed", "false");
  }

  close() {
    this.pause();
  }
}
