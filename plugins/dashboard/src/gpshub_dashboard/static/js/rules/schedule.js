// A rule's schedule: "Always" (null) or weekly windows in the client's time zone, each
// days of the week (0 = Monday) and a start and end time ({"windows": [{"days": [0, 1],
// "start": "08:00", "end": "18:00"}]}, see hub/rules.py). Fields are named like the
// API's errors: "schedule.windows.0.days", "schedule.windows.0.start", …
import { h } from "../dom.js";

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const WORKDAYS = { days: [0, 1, 2, 3, 4], start: "08:00", end: "18:00" };

/** "08:00:00" → "08:00" (what a time input shows). */
const hhmm = (value) => (value ? String(value).slice(0, 5) : "");

/** `schedule`: the rule's, or null; `zone()`: the client's time zone, to say so. */
export function scheduleFields(schedule, zone) {
  const rows = h("div.schedule-rows#schedule-rows", { dataset: { field: "schedule.windows" }, tabindex: -1 });
  const always = h("input#rule-schedule-always", { type: "radio", name: "schedule_mode", value: "always", checked: !schedule });
  const timed = h("input#rule-schedule-times", { type: "radio", name: "schedule_mode", value: "times", checked: !!schedule });
  const zoneText = h("small.ar-hint#rule-schedule-zone");
  const add = h("button#schedule-add", { type: "button", onclick: () => addRow(WORKDAYS) }, "Add times");
  const windows = h("div.schedule-windows", rows, h("small.ar-hint", "An end before the start runs past midnight; empty times: the whole day."), h("div.ar-actions", add));
  const el = h(
    "fieldset.ar-params#rule-schedule",
    h("legend", "Schedule"),
    h("label.ar-check", always, "Always"),
    h("label.ar-check", timed, "Only at these times", zoneText),
    windows,
  );

  function renumber() {
    [...rows.children].forEach((row, i) => {
      row.dataset.index = i;
      row.querySelector(".schedule-days").dataset.field = `schedule.windows.${i}.days`;
      for (const box of row.querySelectorAll(".schedule-days input")) box.name = `schedule.windows.${i}.days`;
      row.querySelector(".schedule-start").name = `schedule.windows.${i}.start`;
      row.querySelector(".schedule-end").name = `schedule.windows.${i}.end`;
    });
  }

  function addRow(window) {
    const chosen = new Set(window.days || []);
    const time = (cls, value, label) => h(`input.${cls}`, { type: "time", value: hhmm(value), "aria-label": label, dataset: { original: value || "" } });
    const row = h(
      "div.schedule-row",
      h("div.schedule-days", { tabindex: -1, role: "group", "aria-label": "Days" }, DAYS.map((day, d) => h("label", h("input", { type: "checkbox", value: d, checked: chosen.has(d) }), day))),
      h("span.schedule-times", time("schedule-start", window.start, "From"), "–", time("schedule-end", window.end, "To")),
      h("button.schedule-remove", { type: "button", onclick: () => (row.remove(), renumber()) }, "Remove"),
    );
    rows.append(row);
    renumber();
  }

  const sync = () => {
    windows.hidden = !timed.checked;
    if (timed.checked && !rows.children.length) addRow(WORKDAYS);
    const z = zone();
    zoneText.textContent = z ? ` (${z} time)` : "";
  };
  always.addEventListener("change", sync);
  timed.addEventListener("change", sync);
  for (const w of schedule ? schedule.windows : []) addRow(w);
  sync();

  /** The schedule to send: null (always) or {windows: [...]}. */
  function read() {
    if (!timed.checked) return null;
    const time = (input) => {
      const original = input.dataset.original;
      if (!input.value) return undefined; // the API's default: the day's start or end
      return original && hhmm(original) === input.value ? original : input.value; // unchanged: as it was
    };
    return {
      windows: [...rows.children].map((row) => {
        const w = { days: [...row.querySelectorAll(".schedule-days input:checked")].map((box) => Number(box.value)) };
        const start = time(row.querySelector(".schedule-start"));
        const end = time(row.querySelector(".schedule-end"));
        if (start !== undefined) w.start = start;
        if (end !== undefined) w.end = end;
        return w;
      }),
    };
  }

  return { el, read, sync };
}
