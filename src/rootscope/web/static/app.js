// rootscope labelling page: paint strokes per class, train the pixel classifier, look at its output, review.
// Every stroke goes to the server at once (it writes the label PNG, at full size). The wheel zooms, the
// middle button or space + drag pans; the pictures of the visible rectangle come from the server.
// Data (names, keys, table cells) goes into the page as text nodes only, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, scan: null, label: 1, size: [1, 1], view: { zoom: 1, x: 0, y: 0 }, fit: 1,
  busy: false, spaceDown: false };
const TRAIT_COLUMNS = ["primary_length_mm", "total_length_mm", "lateral_count", "lateral_density_per_cm",
  "mean_lateral_length_mm", "branched_zone_mm", "depth_mm", "width_mm", "hull_area_mm2", "mean_diameter_mm"];

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

// The server takes a POST only as JSON (so that no other site can send one); `body` is {} by default.
const post = (url, body = {}) => call(url, {
  method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
});

// An element with children (strings become text) and properties.
function element(tag, children = [], properties = {}) {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
}

async function call(url, options = {}) {
  const response = await fetch(url, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.detail ?? `${response.status} ${response.statusText}`);
  return body;
}

// A picture from the server as an object URL; a refusal comes back as its JSON message.
async function fetchPicture(url) {
  const response = await fetch(fresh(url));
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.detail ?? `${response.status} ${response.statusText}`);
  }
  return URL.createObjectURL(await response.blob());
}

function show(img, url) {
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = url;
}

async function loadPicture(img, url) {
  show(img, await fetchPicture(url));
  await img.decode();
}

const scanUrl = (what) => `/api/scans/${state.scan.split("/").map(encodeURIComponent).join("/")}/${what}`;
const fresh = (url) => `${url}${url.includes("?") ? "&" : "?"}t=${Date.now()}`;

// ----------------------------------------------------------------------------- scans and classes
function drawScanList() {
  const list = $("scans");
  list.replaceChildren();
  let plate = null;
  for (const scan of state.info.scans) {
    if (scan.plate !== plate) {
      plate = scan.plate;
      if (plate) list.append(element("h3", [plate]));
    }
    const button = document.createElement("button");
    button.textContent = scan.name;
    button.dataset.key = scan.key;
    button.className = (scan.labelled ? "labelled " : "") + (scan.key === state.scan ? "current" : "");
    button.onclick = () => openScan(scan.key);
    list.append(button);
  }
}

function drawClassButtons() {
  const box = $("classes");
  box.replaceChildren();
  const choices = [...state.info.classes, { value: 0, name: "erase", colour: "#ffffff" }];
  for (const c of choices) {
    const button = document.createElement("button");
    button.className = "class" + (c.value === state.label ? " current" : "");
    button.title = c.value ? `paint ${c.name} (key ${c.value})` : "erase labels (key 0 or E)";
    const swatch = element("span", [], { className: "swatch" });
    swatch.style.background = c.colour;
    button.append(swatch, c.name);
    button.onclick = () => { state.label = c.value; drawClassButtons(); };
    box.append(button);
  }
}

function drawModelChoice() {
  const select = $("model");
  const names = Object.keys(state.info.models);
  select.replaceChildren(...(names.length ? names : ["none yet"]).map((n) => element("option", [n])));
  select.disabled = !names.length;
}

async function openScan(key) {
  state.scan = key;
  drawScanList();
  status(`loading ${key}...`);
  for (const id of VIEW_LAYERS) {  // nothing of the last scan, not even a picture still on its way
    Object.assign($(id), { rect: null, hidden: true, ticket: ($(id).ticket ?? 0) + 1 });
  }
  try {
    const size = await call(scanUrl("size"));
    state.size = [size.width, size.height];
    $("overview").rect = [0, 0, size.width, size.height];
    await loadPicture($("overview"), scanUrl("image.jpg"));
  } catch (error) {
    status(error.message, true);
    return;
  }
  await refreshReview().catch((error) => status(error.message, true));  // sets the viewport's height
  fitView();
  status(`${key} (${state.size[0]} x ${state.size[1]} px): paint strokes of each class, then train`);
}

// ----------------------------------------------------------------------------- zoom and pan
// The view: `zoom` screen px per full-size px; (x, y) the full-size point at the viewport's top-left.
// Each picture knows the full-size rectangle it shows (img.rect) and is placed over it.
const VIEW_LAYERS = ["base", "labels", "prediction", "uncertainty"];
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function place(img) {
  if (!img.rect) return;
  const [x0, y0, x1, y1] = img.rect;
  const { zoom, x, y } = state.view;
  Object.assign(img.style, { left: `${(x0 - x) * zoom}px`, top: `${(y0 - y) * zoom}px`,
    width: `${(x1 - x0) * zoom}px`, height: `${(y1 - y0) * zoom}px` });
}

function setView(zoom, x, y) {
  state.view = { zoom, x, y };
  for (const id of ["overview", ...VIEW_LAYERS]) place($(id));
  clearTimeout(state.refresh);
  state.refresh = setTimeout(refreshView, 150);  // fetch the pictures once the view settles
}

function zoomAt(factor, cx, cy) {  // keeps the scan point under viewport position (cx, cy) in place
  const { zoom, x, y } = state.view;
  const next = clamp(zoom * factor, state.fit / 2, 32);
  setView(next, x + cx / zoom - cx / next, y + cy / zoom - cy / next);
}

function zoomCentre(factor) {
  const view = $("viewport");
  zoomAt(factor, view.clientWidth / 2, view.clientHeight / 2);
}

function fitView() {
  const view = $("viewport");
  const [w, h] = state.size;
  state.fit = 0.98 * Math.min(view.clientWidth / w, view.clientHeight / h);
  setView(state.fit, (w - view.clientWidth / state.fit) / 2, (h - view.clientHeight / state.fit) / 2);
}

// The visible part of the scan in whole full-size pixels, [x0, y0, x1, y1).
function visibleRect() {
  const view = $("viewport");
  const { zoom, x, y } = state.view;
  const [w, h] = state.size;
  const x0 = clamp(Math.floor(x), 0, w - 1), y0 = clamp(Math.floor(y), 0, h - 1);
  return [x0, y0, clamp(Math.ceil(x + view.clientWidth / zoom), x0 + 1, w),
    clamp(Math.ceil(y + view.clientHeight / zoom), y0 + 1, h)];
}

// Query of a view: as many pixels as the screen shows, at most one per full-size pixel (the browser
// enlarges them crisply) and at most the server's preview_px on the longer side.
function viewQuery(rect) {
  const [x0, y0, x1, y1] = rect;
  const limit = Math.floor(state.info.preview_px * (x1 - x0) / Math.max(x1 - x0, y1 - y0));
  const px = Math.max(1, Math.min(Math.round((x1 - x0) * state.view.zoom * devicePixelRatio), x1 - x0, limit));
  return `x0=${x0}&y0=${y0}&x1=${x1}&y1=${y1}&px=${px}`;
}

// One layer for the visible rectangle; a newer request for the same layer wins.
async function loadView(img, what, query = "") {
  const rect = visibleRect();
  const ticket = img.ticket = (img.ticket ?? 0) + 1;
  const url = await fetchPicture(`${scanUrl(what)}?${viewQuery(rect)}${query}`);
  const next = new Image();  // decoded before it replaces the shown one, which stays placed till then
  next.src = url;
  await next.decode();
  if (ticket !== img.ticket) return URL.revokeObjectURL(url);
  show(img, url);
  Object.assign(img, { rect, hidden: false });
  place(img);
}

async function refreshView() {
  if (!state.scan) return;
  await Promise.all([loadView($("base"), "image.jpg").catch((error) => status(error.message, true)),
    refreshLabels(), refreshModelLayers()]);
}

// ----------------------------------------------------------------------------- layers
async function refreshLabels() {
  if (!$("show-labels").checked) { $("labels").hidden = true; return; }
  await loadView($("labels"), "labels.png").catch((error) => status(error.message, true));
}

async function refreshModelLayers() {
  const model = $("model").value;
  for (const id of ["prediction", "uncertainty"]) {
    const img = $(id);
    if (!$(`show-${id}`).checked || $("model").disabled) { img.hidden = true; continue; }
    try {
      await loadView(img, `${id}.png`, `&model=${model}`);
    } catch (error) {
      img.hidden = true;
      status(error.message, true);
    }
  }
  setOpacity();
}

function setOpacity() {
  const alpha = $("opacity").value / 100;
  for (const id of ["labels", "prediction", "uncertainty"]) $(id).style.opacity = alpha;
}

// ----------------------------------------------------------------------------- painting and panning
// Strokes are kept in full-size pixels (fractional: the pixel a point falls in is painted) and drawn
// on the ink canvas, which covers the viewport, until the server's labels come back.
let stroke = null;
let pan = null;

function viewportPoint(event) {
  const box = $("viewport").getBoundingClientRect();
  return [event.clientX - box.left, event.clientY - box.top];
}

function scanPoint(event) {
  const [cx, cy] = viewportPoint(event);
  return [state.view.x + cx / state.view.zoom, state.view.y + cy / state.view.zoom];
}

function screenPoint([px, py]) {
  return [(px - state.view.x) * state.view.zoom, (py - state.view.y) * state.view.zoom];
}

function brushWidth() {
  return Number($("brush").value);
}

function inkColour() {
  const c = state.info.classes.find((k) => k.value === state.label);
  return c ? c.colour : "#ffffff";
}

function sizeInk() {
  const ink = $("ink");
  const view = $("viewport");
  ink.width = view.clientWidth * devicePixelRatio;
  ink.height = view.clientHeight * devicePixelRatio;
  ink.getContext("2d").setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
}

function pointerDown(event) {
  if (!state.scan) return;
  $("ink").setPointerCapture(event.pointerId);
  if (event.button === 1 || (event.button === 0 && state.spaceDown)) {
    event.preventDefault();
    pan = { from: viewportPoint(event), view: { ...state.view } };
    $("ink").classList.add("panning");
  } else if (event.button === 0) {
    stroke = [scanPoint(event)];
    const ctx = $("ink").getContext("2d");
    ctx.strokeStyle = ctx.fillStyle = inkColour();
    ctx.lineWidth = (2 * Math.floor(brushWidth() / 2) + 1) * state.view.zoom;  // what the server paints
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.arc(...screenPoint(stroke[0]), ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
  }
}

function pointerMove(event) {
  if (pan) {
    const [cx, cy] = viewportPoint(event);
    const { zoom, x, y } = pan.view;
    setView(zoom, x - (cx - pan.from[0]) / zoom, y - (cy - pan.from[1]) / zoom);
  } else if (stroke) {
    const point = scanPoint(event);
    const ctx = $("ink").getContext("2d");
    ctx.beginPath();
    ctx.moveTo(...screenPoint(stroke[stroke.length - 1]));
    ctx.lineTo(...screenPoint(point));
    ctx.stroke();
    stroke.push(point);
  }
}

async function pointerUp() {
  if (pan) {
    pan = null;
    $("ink").classList.remove("panning");
  }
  if (!stroke) return;
  const points = stroke;
  stroke = null;
  try {
    const body = { points, width: brushWidth(), label: state.label, full_size: true };
    const answer = await post(scanUrl("strokes"), body);
    markLabelled();
    status(labelledText(answer.labelled));
    await refreshLabels();
  } catch (error) {
    status(error.message, true);
  }
  const ink = $("ink");
  ink.getContext("2d").clearRect(0, 0, ink.width, ink.height);
}

function wheel(event) {
  event.preventDefault();
  if (!state.scan || stroke) return;
  const lines = event.deltaMode === 1 ? 16 : 1;
  zoomAt(Math.exp(-event.deltaY * lines * 0.002), ...viewportPoint(event));
}

function labelledText(counts) {
  return "labelled px: " + Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ");
}

function markLabelled() {
  const scan = state.info.scans.find((s) => s.key === state.scan);
  if (scan && !scan.labelled) { scan.labelled = true; drawScanList(); }
}

async function undo() {
  try {
    const answer = await post(scanUrl("undo"));
    status("undone; " + labelledText(answer.labelled));
    await refreshLabels();
  } catch (error) {
    status(error.message, true);
  }
}

async function train() {
  if (state.busy) return;
  state.busy = true;
  $("train").disabled = true;
  status("training the pixel classifier on every labelled scan...");
  try {
    const answer = await post("/api/train");
    state.info = await call("/api/info");
    drawModelChoice();
    $("model").value = "live";
    $("show-prediction").checked = true;
    await refreshModelLayers();
    const counts = Object.entries(answer.pixels_per_class).map(([k, v]) => `${k} ${v}`).join(", ");
    status(`trained on ${answer.scans.length} scans (${counts} px) in ${answer.seconds.toFixed(1)} s -> ${answer.model}`);
  } catch (error) {
    status(error.message, true);
  } finally {
    state.busy = false;
    $("train").disabled = false;
  }
}

// ----------------------------------------------------------------------------- review
async function refreshReview() {
  const answer = await call(scanUrl("results"));
  const has = answer.rows.length > 0 || answer.overlay;
  $("review-empty").hidden = has;
  $("review-body").hidden = !has;
  $("result-overlay").hidden = !answer.overlay;
  if (answer.overlay) await loadPicture($("result-overlay"), scanUrl("overlay.png"));
  const columns = TRAIT_COLUMNS.filter((c) => answer.rows.some((r) => c in r));
  const cell = (v) => String(typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(2)) : v ?? "");
  const row = (tag, first, values) =>
    element("tr", [element(tag, [first]), ...values.map((v) => element(tag, [cell(v)]))]);
  const header = row("th", "plant", answer.rows.map((r) => r.plant));
  const lines = columns.map((c) => row("td", c, answer.rows.map((r) => r[c])));
  $("traits").replaceChildren(...(answer.rows.length ? [element("table", [header, ...lines])] : []));
}

// ----------------------------------------------------------------------------- wiring
function keys(event) {
  if (event.key === " ") {  // held down, a drag pans (also when a checkbox or button has the focus)
    event.preventDefault();
    state.spaceDown = true;
    $("ink").classList.add("pan");
    return;
  }
  if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
  const value = /^[0-9]$/.test(event.key) ? Number(event.key) : NaN;
  if (value <= state.info.classes.length) { state.label = value; drawClassButtons(); }
  else if (event.key === "e") { state.label = 0; drawClassButtons(); }
  else if (event.key === "z" && (event.ctrlKey || event.metaKey)) undo();
  else if (event.key === "t") train();
  else if (event.key === "p") { $("show-prediction").click(); }
  else if (event.key === "+" || event.key === "=") zoomCentre(1.25);
  else if (event.key === "-") zoomCentre(1 / 1.25);
  else if (event.key === "f") fitView();
}

function keyUp(event) {
  if (event.key !== " ") return;
  event.preventDefault();  // no click on a focused button
  state.spaceDown = false;
  $("ink").classList.remove("pan");
}

async function start() {
  try {
    state.info = await call("/api/info");
  } catch (error) {
    status(error.message, true);
    return;
  }
  $("folder").textContent = state.info.folder;
  drawClassButtons();
  drawModelChoice();
  $("show-prediction").checked = Object.keys(state.info.models).length > 0;  // a model to correct: show it
  drawScanList();
  const ink = $("ink");
  ink.addEventListener("pointerdown", pointerDown);
  ink.addEventListener("pointermove", pointerMove);
  ink.addEventListener("pointerup", pointerUp);
  ink.addEventListener("pointercancel", pointerUp);
  ink.addEventListener("wheel", wheel, { passive: false });
  ink.addEventListener("mousedown", (event) => { if (event.button === 1) event.preventDefault(); });  // no autoscroll
  new ResizeObserver(() => {  // the window or the review panel changed the viewport's size
    sizeInk();
    if (state.scan) setView(state.view.zoom, state.view.x, state.view.y);
  }).observe($("viewport"));
  $("brush").oninput = () => { $("brush-value").textContent = $("brush").value; };
  $("zoom-in").onclick = () => zoomCentre(1.25);
  $("zoom-out").onclick = () => zoomCentre(1 / 1.25);
  $("zoom-fit").onclick = fitView;
  $("show-labels").onchange = refreshLabels;
  $("show-prediction").onchange = refreshModelLayers;
  $("show-uncertainty").onchange = refreshModelLayers;
  $("model").onchange = refreshModelLayers;
  $("opacity").oninput = setOpacity;
  $("undo").onclick = undo;
  $("train").onclick = train;
  document.addEventListener("keydown", keys);
  document.addEventListener("keyup", keyUp);
  if (state.info.scans.length) await openScan(state.info.scans[0].key);
}

start();
