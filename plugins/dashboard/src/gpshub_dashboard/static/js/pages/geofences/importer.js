// Import: a .geojson / .json FeatureCollection → POST /api/geofences/import, all or
// nothing; says how many were imported, or the error naming features.N.….
import { api } from "../../api.js";
import { h } from "../../dom.js";

/** `body()`: what the import adds (the client_id an administrator chose); `onImported(n)`. */
export function importBox({ body, onImported }) {
  const file = h("input#gf-import", { type: "file", accept: ".geojson,.json,application/geo+json,application/json", onchange: read });
  const result = h("p.result.gf-import-result#gf-import-result", { role: "status", hidden: true });
  const show = (ok, text) => {
    result.className = `result gf-import-result ${ok ? "ok" : "error"}`;
    result.textContent = text;
    result.hidden = false;
  };

  async function read() {
    const chosen = file.files[0];
    if (!chosen) return;
    result.hidden = true;
    file.disabled = true;
    try {
      let data;
      try {
        data = JSON.parse(await chosen.text());
      } catch (error) {
        return show(false, `${chosen.name} is not JSON: ${error.message}`);
      }
      if (data && data.type === "Feature") data = { type: "FeatureCollection", features: [data] };
      if (!data || data.type !== "FeatureCollection" || !Array.isArray(data.features)) {
        return show(false, `${chosen.name} is not a GeoJSON FeatureCollection`);
      }
      const extra = body();
      if (extra === null) return show(false, "client_id: choose the client first");
      const answer = await api.post("/api/geofences/import", { type: "FeatureCollection", features: data.features, ...extra });
      const n = answer.features.length;
      show(true, `Imported ${n} geofence${n === 1 ? "" : "s"} from ${chosen.name}.`);
      onImported(n);
    } catch (error) {
      show(false, `Nothing imported: ${error.field ? `${error.field}: ` : ""}${error.message}`);
    } finally {
      file.disabled = false;
      file.value = ""; // the same file again is a new choice
    }
  }

  return h("div.gf-import", h("label.button", { for: "gf-import" }, "Import GeoJSON"), file, result);
}
