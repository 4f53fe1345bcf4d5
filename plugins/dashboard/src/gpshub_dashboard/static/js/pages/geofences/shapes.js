// A geofence (a GeoJSON Feature of the API) on the map, and back: a circle is an
// L.circle, a polygon an L.polygon, a corridor its centre line over a band as wide as
// the corridor (its weight follows the zoom: width_m in pixels).
export const KINDS = { circle: "Circle", polygon: "Polygon", corridor: "Corridor" };
const BY_GEOMETRY = { Point: "circle", Polygon: "polygon", LineString: "corridor" };

export function kindOf(feature) {
  return feature.properties.kind || BY_GEOMETRY[feature.geometry && feature.geometry.type] || "polygon";
}

/** Metres a pixel measures at `lat` on `map`'s current zoom. */
function metresPerPixel(map, lat) {
  return (40075016.686 * Math.cos((lat * Math.PI) / 180)) / 2 ** (map.getZoom() + 8);
}

/**
 * The layers of one geofence: `shape` (the one Geoman edits; clicks and tooltips) and,
 * for a corridor, `band`. `layer` holds both.
 */
export class GeofenceLayer {
  constructor(map, feature, onClick) {
    this.map = map;
    this.feature = feature;
    this.kind = kindOf(feature);
    const props = feature.properties;
    const coords = feature.geometry.coordinates;
    const style = { className: `gf-shape gf-${this.kind}`, weight: 2 };
    this.layer = L.featureGroup();
    if (this.kind === "circle") {
      this.shape = L.circle([coords[1], coords[0]], { ...style, radius: Number(props.radius_m) || 1 });
    } else if (this.kind === "polygon") {
      this.shape = L.polygon(L.GeoJSON.coordsToLatLngs(coords, 1), style);
    } else {
      const latlngs = L.GeoJSON.coordsToLatLngs(coords, 0);
      this.band = L.polyline(latlngs, { className: "gf-band", interactive: false, pmIgnore: true, lineCap: "round", lineJoin: "round" });
      this.shape = L.polyline(latlngs, { ...style, weight: 2 });
      this.band.addTo(this.layer);
      this.zoomed = () => this.fitBand();
      map.on("zoomend", this.zoomed);
    }
    this.shape.feature = feature;
    this.shape.bindTooltip(props.name || `#${feature.id}`, { sticky: true, className: "gf-tooltip" });
    this.shape.on("click", () => onClick(feature.id));
    this.shape.addTo(this.layer);
    this.fitBand();
  }

  /** The corridor's band: `width_m` wide at this zoom (at least 3 px, to be seen). */
  fitBand(width = this.feature.properties.width_m) {
    if (!this.band) return;
    this.band.setLatLngs(this.shape.getLatLngs());
    const lat = this.shape.getBounds().getCenter().lat;
    this.band.setStyle({ weight: Math.max(3, Number(width || 0) / metresPerPixel(this.map, lat)) });
  }

  bounds() {
    return this.shape.getBounds();
  }

  select(on) {
    const el = this.shape.getElement && this.shape.getElement();
    if (el) el.classList.toggle("selected", on);
  }

  remove() {
    if (this.zoomed) this.map.off("zoomend", this.zoomed);
    this.layer.remove();
  }
}

/** A drawn or edited Leaflet layer's GeoJSON geometry (6 decimals: about 0.1 m). */
export function geometryOf(layer) {
  return layer.toGeoJSON(6).geometry;
}

/** The kind of a shape Geoman drew ("Circle", "Polygon", "Line"). */
export function kindOfShape(shape) {
  return { Circle: "circle", Polygon: "polygon", Line: "corridor" }[shape];
}
