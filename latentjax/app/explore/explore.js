// latentjax explore: the page. It reaches the data only through one object, `backend`:
//
//   backend.info()            -> Promise<info>   the map and what never changes (GET /api/info):
//        {dataset, method, kind, arch, num_points, points: [[x, y]], labels: [int], label_names: [str],
//         latent_dim, image_shape: [h, w, c], latent_range: [[lo, hi]] per dimension,
//         class_means: [[...] | null] per class, edits: {name: {vector, scale, kind}},
//         factors: {name: [value per point]}, limits: {decode, path_points, strip}}
//   backend.thumb(i)          -> string          an image URL of test image i (GET /api/thumb?i=N)
//   backend.decode({xy: [[x, y], ...]} | {z: [[...], ...]})
//                             -> Promise<{z: [[...]], images: [PNG data URL]}>           (POST /api/decode)
//   backend.paths({xy | z: [2..8 points], num_points, geodesic_steps})
//                             -> Promise<{waypoints, num_points, lerp|slerp|geodesic:
//                                  {z, images, diagnostics: {latent_length, decoded_length,
//                                                            decoded_energy, max_step}}}>   (POST /api/paths)
//   backend.edit({z: [...] | xy: [x, y] | index: i, edits: [{kind: "class", source, target, strength} |
//                 {kind: "factor", name, strength}], orthogonalize: false})
//                             -> Promise<{base: [[...]], z: [[...]], images: [url]}>    (POST /api/edit)
//   backend.neighbors({z | xy | index, k}) -> Promise<{indices, distances, labels, points}>
//                                                                                        (POST /api/neighbors)
//   backend.strip({z: [[...]], format: "png" | "gif", scale}) -> Promise<Blob>           (POST /api/strip)
//
// Every method rejects with an Error whose message is the server's one-line reason. The live page
// uses `liveBackend()` (fetch); a self-contained page sets `window.EXPLORE_BACKEND` to an object with
// the same methods before this script runs. Labels and metadata are only ever set as text
// (textContent, option.text), never as HTML. `window.explorer` exposes the state for tests.
"use strict";

function liveBackend(base = "") {
  async function call(path, body) {
    const r = await fetch(base + path, body === undefined ? {} : {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return r;
  }
  return {
    info: async () => (await call("/api/info")).json(),
    thumb: (i) => base + "/api/thumb?i=" + encodeURIComponent(i),
    decode: async (req) => (await call("/api/decode", req)).json(),
    paths: async (req) => (await call("/api/paths", req)).json(),
    edit: async (req) => (await call("/api/edit", req)).json(),
    neighbors: async (req) => (await call("/api/neighbors", req)).json(),
    strip: async (req) => (await call("/api/strip", req)).blob(),
  };
}

const $ = (id) => document.getElementById(id);
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

const explorer = {
  ready: false, info: null, view: null, decodes: 0, lastError: null,
  state: {xy: null, base: null, z: null, dragging: false, waypoints: [], colourBy: "class", hidden: new Set(),
    classEdit: {source: 0, target: 1, strength: 0}, factorStrengths: {}, strips: null},
};
window.explorer = explorer;

function classColour(c) {
  return c < PALETTE.length ? PALETTE[c] : `hsl(${(c * 137.5) % 360}, 60%, 45%)`;
}

function viridis(t) {
  const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2);
  const f = x - i, a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return `rgb(${a.map((v, k) => Math.round(v + f * (b[k] - v))).join(",")})`;
}

function setStatus(msg) {
  explorer.lastError = msg || null;
  $("status").textContent = msg || "";
}

// One request per channel in flight; while it runs only the newest request waits (drags stay live).
function latestOnly(fn) {
  let running = false, pending = null;
  return function run(arg) {
    if (running) { pending = {arg}; return; }
    running = true;
    Promise.resolve(fn(arg)).catch((e) => setStatus(e.message)).finally(() => {
      running = false;
      if (pending) { const p = pending; pending = null; run(p.arg); }
    });
  };
}

function makeView(points, width, height) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of points) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  const mx = 0.05 * (x1 - x0 || 1), my = 0.05 * (y1 - y0 || 1);
  return {x0: x0 - mx, x1: x1 + mx, y0: y0 - my, y1: y1 + my, width, height};
}

// Canvas pixel (px, py) <-> map coordinates; y points up on the map.
function toMap(px, py) {
  const v = explorer.view;
  return [v.x0 + (px / v.width) * (v.x1 - v.x0), v.y1 - (py / v.height) * (v.y1 - v.y0)];
}
function toPixel(x, y) {
  const v = explorer.view;
  return [((x - v.x0) / (v.x1 - v.x0)) * v.width, ((v.y1 - y) / (v.y1 - v.y0)) * v.height];
}
explorer.toMap = toMap;
explorer.toPixel = toPixel;

function pointColours() {
  const info = explorer.info, by = explorer.state.colourBy;
  if (by === "class") return info.labels.map(classColour);
  const vals = info.factors[by], lo = Math.min(...vals), hi = Math.max(...vals);
  return vals.map((v) => viridis((v - lo) / (hi - lo || 1)));
}

let pointsLayer = null;
function drawPoints() {
  const info = explorer.info, v = explorer.view, colours = pointColours();
  pointsLayer = document.createElement("canvas");
  pointsLayer.width = v.width; pointsLayer.height = v.height;
  const g = pointsLayer.getContext("2d");
  g.globalAlpha = 0.75;
  info.points.forEach(([x, y], i) => {
    if (explorer.state.hidden.has(info.labels[i])) return;
    const [px, py] = toPixel(x, y);
    g.fillStyle = colours[i];
    g.fillRect(px - 1.5, py - 1.5, 3, 3);
  });
  drawLegend();
  redraw();
}

function drawLegend() {
  const info = explorer.info, legend = $("legend"), by = explorer.state.colourBy;
  legend.replaceChildren();
  if (by !== "class") {
    const vals = info.factors[by];
    legend.textContent = `${by}: ${Math.min(...vals).toPrecision(3)} (purple) .. ${Math.max(...vals).toPrecision(3)} (yellow)`;
    return;
  }
  info.label_names.forEach((name, c) => {
    const item = document.createElement("span"), sw = document.createElement("span");
    sw.className = "swatch"; sw.style.background = classColour(c);
    item.append(sw, document.createTextNode(name));
    legend.append(item);
  });
}

function redraw() {
  const g = $("map").getContext("2d"), v = explorer.view, s = explorer.state;
  g.clearRect(0, 0, v.width, v.height);
  if (pointsLayer) g.drawImage(pointsLayer, 0, 0);
  const mark = (xy, colour, r) => {
    const [px, py] = toPixel(xy[0], xy[1]);
    g.strokeStyle = colour; g.lineWidth = 2; g.beginPath(); g.arc(px, py, r, 0, 2 * Math.PI); g.stroke();
  };
  const wps = s.waypoints.filter((w) => w.xy);
  if (wps.length > 1) {
    g.strokeStyle = "#000"; g.lineWidth = 1; g.setLineDash([4, 3]); g.beginPath();
    wps.forEach((w, i) => { const [px, py] = toPixel(...w.xy); if (i) g.lineTo(px, py); else g.moveTo(px, py); });
    g.stroke(); g.setLineDash([]);
  }
  wps.forEach((w) => mark(w.xy, "#000", 5));
  if (s.xy) mark(s.xy, "#e00", 7);
}

function editList() {
  const s = explorer.state, out = [];
  if (s.classEdit.strength !== 0 && s.classEdit.source !== s.classEdit.target) out.push({kind: "class", ...s.classEdit});
  for (const [name, strength] of Object.entries(s.factorStrengths)) {
    if (strength !== 0) out.push({kind: "factor", name, strength});
  }
  return out;
}

function show(z, image) {
  const s = explorer.state;
  s.z = z;
  $("decoded").src = image;
  explorer.decodes += 1;
  const dims = $("dims").querySelectorAll("input");
  dims.forEach((el, j) => {
    if (el !== document.activeElement) el.value = z[j];  // the slider being moved keeps its place
    el.nextSibling.textContent = z[j].toFixed(2);
  });
  $("decoded-info").textContent = s.xy ? `map (${s.xy[0].toFixed(2)}, ${s.xy[1].toFixed(2)})` : "edited latent";
}

// Selecting a point: decode at a map position (or a test point), then apply the chained edits.
const select = latestOnly(async (req) => {
  const edits = editList();
  let r;
  if (edits.length === 0 && !("index" in req)) {
    r = await explorer.backend.decode(req.xy ? {xy: [req.xy]} : {z: [req.z]});
    explorer.state.base = r.z[0];
  } else {
    const one = req.xy ? {xy: req.xy} : "index" in req ? {index: req.index} : {z: req.z};
    r = await explorer.backend.edit({...one, edits});
    explorer.state.base = r.base[0];
  }
  show(r.z[0], r.images[0]);
  setStatus("");
  if (!explorer.state.dragging) refreshNeighbors();  // after a drag: once, where it ended
});

const reEdit = latestOnly(async () => {
  const s = explorer.state;
  if (!s.base) return;
  const r = await explorer.backend.edit({z: s.base, edits: editList()});
  show(r.z[0], r.images[0]);
  setStatus("");
  refreshNeighbors();
});

const decodeZ = latestOnly(async (z) => {
  const r = await explorer.backend.decode({z: [z]});
  show(r.z[0], r.images[0]);
  setStatus("");
  refreshNeighbors();
});

const refreshNeighbors = latestOnly(async () => {
  const s = explorer.state;
  if (!s.z) return;
  const r = await explorer.backend.neighbors({z: s.z, k: 8});
  const box = $("neighbors");
  box.replaceChildren();
  r.indices.forEach((i, n) => {
    const fig = document.createElement("figure"), img = document.createElement("img"), cap = document.createElement("figcaption");
    img.src = explorer.backend.thumb(i); img.alt = explorer.info.label_names[r.labels[n]] ?? "";
    cap.textContent = `${explorer.info.label_names[r.labels[n]] ?? r.labels[n]} ${r.distances[n].toFixed(2)}`;
    fig.title = `test image ${i}`;
    fig.append(img, cap);
    fig.addEventListener("click", () => {
      explorer.state.xy = r.points[n];
      redraw();
      select({xy: r.points[n]});
    });
    box.append(fig);
  });
});

function slider(parent, name, lo, hi, value, step, oninput) {
  const row = document.createElement("div"), label = document.createElement("span");
  const input = document.createElement("input"), out = document.createElement("output");
  row.className = "slider-row"; label.className = "name"; label.textContent = name; label.title = name;
  Object.assign(input, {type: "range", min: lo, max: hi, step, value});
  input.setAttribute("aria-label", name);
  out.textContent = Number(value).toFixed(2);
  input.addEventListener("input", () => { out.textContent = Number(input.value).toFixed(2); oninput(Number(input.value)); });
  row.append(label, input, out);
  parent.append(row);
  return input;
}

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value; o.text = text;
  select.append(o);
}

function buildControls() {
  const info = explorer.info, s = explorer.state;
  $("meta").textContent = `${info.dataset}: ${info.kind} ${info.arch}, ${info.latent_dim}-d latents, ` +
    `${info.num_points} test images, ${info.method} map; positions decode through ${info.inverse}`;
  option($("colour-by"), "class", "class");
  Object.keys(info.factors).forEach((f) => option($("colour-by"), f, f));
  $("colour-by").addEventListener("change", (e) => { s.colourBy = e.target.value; drawPoints(); });
  info.label_names.forEach((name, c) => {
    const label = document.createElement("label"), box = document.createElement("input");
    box.type = "checkbox"; box.checked = true; box.dataset.cls = c;
    box.addEventListener("change", () => { if (box.checked) s.hidden.delete(c); else s.hidden.add(c); drawPoints(); });
    label.append(box, document.createTextNode(" " + name));
    $("filter").append(label);
  });
  const present = info.class_means.map((m, c) => (m ? c : -1)).filter((c) => c >= 0);
  for (const id of ["class-source", "class-target"]) present.forEach((c) => option($(id), c, info.label_names[c]));
  if (present.length >= 2) {
    s.classEdit.source = present[0]; s.classEdit.target = present[1];
    $("class-source").value = present[0]; $("class-target").value = present[1];
  } else {
    $("class-edit").hidden = true;
  }
  const onClass = () => {
    s.classEdit = {source: Number($("class-source").value), target: Number($("class-target").value),
      strength: Number($("class-strength").value)};
    $("class-strength-out").textContent = s.classEdit.strength.toFixed(2);
    reEdit();
  };
  for (const id of ["class-source", "class-target", "class-strength"]) $(id).addEventListener("input", onClass);
  for (const [name, e] of Object.entries(info.edits)) {
    s.factorStrengths[name] = 0;
    const lo = e.kind === "attribute" ? -1 : -e.scale, hi = e.kind === "attribute" ? 2 : e.scale;
    slider($("factor-edits"), `${name} (${e.kind})`, lo, hi, 0, (hi - lo) / 100, (v) => { s.factorStrengths[name] = v; reEdit(); });
  }
  info.latent_range.forEach(([lo, hi], j) => {
    slider($("dims"), `z${j}`, lo, hi, 0, (hi - lo) / 200, (v) => {
      if (!s.z) return;
      const z = s.z.slice(); z[j] = v; s.z = z;
      decodeZ(z);
    });
  });
  $("reset-edits").addEventListener("click", () => {
    s.classEdit.strength = 0; $("class-strength").value = 0; $("class-strength-out").textContent = "0.00";
    for (const name of Object.keys(s.factorStrengths)) s.factorStrengths[name] = 0;
    $("factor-edits").querySelectorAll("input").forEach((el) => { el.value = 0; el.nextSibling.textContent = "0.00"; });
    reEdit();
  });
}

function buildMap() {
  const canvas = $("map"), s = explorer.state;
  explorer.view = makeView(explorer.info.points, canvas.width, canvas.height);
  const at = (e) => toMap(e.offsetX, e.offsetY);
  canvas.addEventListener("mousedown", (e) => {
    const xy = at(e);
    if (e.shiftKey) { addWaypoint({xy, z: null}); return; }
    s.dragging = true; s.xy = xy; redraw(); select({xy});
  });
  canvas.addEventListener("mousemove", (e) => {
    if (s.dragging) { s.xy = at(e); redraw(); select({xy: s.xy}); $("hover").hidden = true; return; }
    hover(e.offsetX, e.offsetY);
  });
  const stop = () => { if (s.dragging) { s.dragging = false; refreshNeighbors(); } };
  canvas.addEventListener("mouseup", stop);
  canvas.addEventListener("mouseleave", () => { stop(); $("hover").hidden = true; });
  drawPoints();
}

function hover(px, py) {
  const info = explorer.info, s = explorer.state;
  let best = -1, bestD = 64;
  info.points.forEach(([x, y], i) => {
    if (s.hidden.has(info.labels[i])) return;
    const [qx, qy] = toPixel(x, y), d = (qx - px) ** 2 + (qy - py) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  });
  const box = $("hover");
  if (best < 0) { box.hidden = true; return; }
  $("hover-img").src = explorer.backend.thumb(best);
  $("hover-label").textContent = info.label_names[info.labels[best]] ?? String(info.labels[best]);
  box.style.left = Math.min(px + 12, explorer.view.width - 70) + "px";
  box.style.top = Math.min(py + 12, explorer.view.height - 80) + "px";
  box.hidden = false;
}

async function addWaypoint(w) {
  const s = explorer.state;
  if (s.waypoints.length >= explorer.info.limits.path_points) { setStatus(`at most ${explorer.info.limits.path_points} waypoints`); return; }
  try {
    const z = w.z || (await explorer.backend.decode({xy: [w.xy]})).z[0];
    s.waypoints.push({xy: w.xy, z});
  } catch (e) { setStatus(e.message); return; }
  $("waypoints").textContent = `${s.waypoints.length} waypoint${s.waypoints.length > 1 ? "s" : ""}`;
  $("paths-go").disabled = s.waypoints.length < 2;
  redraw();
}

function renderStrips(r) {
  const box = $("strips");
  box.replaceChildren();
  for (const name of ["lerp", "slerp", "geodesic"]) {
    const p = r[name], div = document.createElement("div"), h = document.createElement("h3");
    const frames = document.createElement("div"), table = document.createElement("table"), row = table.insertRow();
    div.className = "strip"; div.dataset.method = name; frames.className = "frames";
    h.textContent = p.unavailable ? `${name}: ${p.unavailable}` : name;  // the static page's backend
    p.images.forEach((url) => { const img = document.createElement("img"); img.src = url; img.alt = name; frames.append(img); });
    for (const [k, v] of Object.entries(p.diagnostics)) row.insertCell().textContent = `${k.replace(/_/g, " ")} ${v.toPrecision(4)}`;
    div.append(h, frames, table);
    box.append(div);
  }
}

function buildPaths() {
  const s = explorer.state;
  $("add-waypoint").addEventListener("click", () => { if (s.z) addWaypoint({xy: s.xy, z: s.z}); });
  $("waypoints-clear").addEventListener("click", () => {
    s.waypoints = []; s.strips = null; $("strips").replaceChildren();
    $("waypoints").textContent = "no waypoints: shift-click the map";
    $("paths-go").disabled = true; $("download-png").disabled = true; $("download-gif").disabled = true;
    redraw();
  });
  $("paths-go").addEventListener("click", async () => {
    const n = Number($("path-points").value);
    $("paths-go").disabled = true;
    setStatus("");
    try {
      s.strips = await explorer.backend.paths({z: s.waypoints.map((w) => w.z), num_points: n, geodesic_steps: 200});
      renderStrips(s.strips);
      $("download-png").disabled = false; $("download-gif").disabled = false;
    } catch (e) { setStatus(e.message); }
    $("paths-go").disabled = s.waypoints.length < 2;
  });
  for (const fmt of ["png", "gif"]) {
    $("download-" + fmt).addEventListener("click", async () => {
      if (!s.strips) return;
      const name = $("strip-choice").value;
      try {
        const blob = await explorer.backend.strip({z: s.strips[name].z, format: fmt, scale: 4});
        const a = document.createElement("a");
        a.href = URL.createObjectURL(blob); a.download = `${name}-strip.${fmt}`;
        document.body.append(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      } catch (e) { setStatus(e.message); }
    });
  }
}

async function start(backend) {
  explorer.backend = backend;
  try {
    explorer.info = await backend.info();
  } catch (e) { setStatus("could not load the map: " + e.message); return; }
  buildControls();
  buildMap();
  buildPaths();
  explorer.ready = true;
}

window.addEventListener("DOMContentLoaded", () => start(window.EXPLORE_BACKEND || liveBackend()));
