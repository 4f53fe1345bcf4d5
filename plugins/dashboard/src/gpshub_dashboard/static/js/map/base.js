// The Leaflet map every page starts from: the whole world, the hub's tile layer
// (config.js: map_tile_url, its attribution and maximum zoom; none when the URL is empty).
import { config } from "../config.js";

/** A Leaflet map in `el` with the hub's tiles; `options` are Leaflet's map options. */
export function baseMap(el, options = {}) {
  const map = L.map(el, {
    worldCopyJump: true,
    maxZoom: config.tiles.max_zoom ?? 19, // also without a tile layer (none configured)
    ...options,
  }).setView([20, 0], 2);
  if (config.tiles.url) {
    // no tiles (the hub's map_tile_url is empty, or no internet): the layers on a blank map
    L.tileLayer(config.tiles.url, { attribution: config.tiles.attribution, maxZoom: config.tiles.max_zoom }).addTo(map);
  }
  return map;
}
