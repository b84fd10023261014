// rootscope labelling page: paint strokes per class, train the pixel classifier, look at its output, review.
// Every stroke goes to the server at once (it writes the label PNG); pictures come back at preview size.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, scan: null, label: 1, zoom: 1, size: [1, 1], busy: false };
const TRAIT_COLUMNS = ["primary_length_mm", "total_length_mm", "lateral_count", "lateral_density_per_cm",
  "mean_lateral_length_mm", "branched_zone_mm", "depth_mm", "width_mm", "hull_area_mm2", "mean_diameter_mm"];

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function call(url, options = {}) {
  const response = await fetch(url, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.detail ?? `${response.status} ${response.statusText}`);
  return body;
}

// A picture from the server into an <img>; a refusal comes back as its JSON message.
async function loadPicture(img, url) {
  const response = await fetch(fresh(url));
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.detail ?? `${response.status} ${response.statusText}`);
  }
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(await response.blob());
  await img.decode();
}

const scanUrl = (what) => `/api/scans/${state.scan}/${what}`;
const fresh = (url) => `${url}${url.includes("?") ? "&" : "?"}t=${Date.now()}`;

// ----------------------------------------------------------------------------- scans and classes
function drawScanList() {
  const list = $("scans");
  list.innerHTML = "";
  let plate = null;
  for (const scan of state.info.scans) {
    if (scan.plate !== plate) {
      plate = scan.plate;
      if (plate) list.insertAdjacentHTML("beforeend", `<h3>${plate}</h3>`);
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
  box.innerHTML = "";
  const choices = [...state.info.classes, { value: 0, name: "erase", colour: "#ffffff" }];
  for (const c of choices) {
    const button = document.createElement("button");
    button.className = "class" + (c.value === state.label ? " current" : "");
    button.title = c.value ? `paint ${c.name} (key ${c.value})` : "erase labels (key 0 or E)";
    button.innerHTML = `<span class="swatch" style="background:${c.colour}"></span>${c.name}`;
    button.onclick = () => { state.label = c.value; drawClassButtons(); };
    box.append(button);
  }
}

function drawModelChoice() {
  const select = $("model");
  const names = Object.keys(state.info.models);
  select.innerHTML = names.length ? names.map((n) => `<option>${n}</option>`).join("") : "<option>none yet</option>";
  select.disabled = !names.length;
}

async function openScan(key) {
  state.scan = key;
  drawScanList();
  status(`loading ${key}...`);
  const base = $("base");
  try {
    await loadPicture(base, scanUrl("image.jpg"));
  } catch (error) {
    status(error.message, true);
    return;
  }
  state.size = [base.naturalWidth, base.naturalHeight];
  const ink = $("ink");
  [ink.width, ink.height] = state.size;
  fitZoom();
  status(`${key}: paint strokes of each class, then train`);
  await Promise.all([refreshLabels(), refreshModelLayers(), refreshReview()]);
}

// ----------------------------------------------------------------------------- layers
async function refreshLabels() {
  const img = $("labels");
  img.hidden = !$("show-labels").checked;
  if (img.hidden) return;
  await loadPicture(img, scanUrl("labels.png")).catch((error) => status(error.message, true));
}

async function refreshModelLayers() {
  const model = $("model").value;
  for (const [id, what] of [["prediction", "prediction.png"], ["uncertainty", "uncertainty.png"]]) {
    const img = $(id);
    img.hidden = !$(`show-${id}`).checked || $("model").disabled;
    if (img.hidden) continue;
    try {
      await loadPicture(img, `${scanUrl(what)}?model=${model}`);
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

function setZoom(zoom) {
  state.zoom = Math.min(8, Math.max(0.1, zoom));
  const stack = $("stack");
  stack.style.width = `${state.size[0] * state.zoom}px`;
  stack.style.height = `${state.size[1] * state.zoom}px`;
}

function fitZoom() {
  const view = $("viewport");
  setZoom(Math.min((view.clientWidth - 20) / state.size[0], (view.clientHeight - 20) / state.size[1]));
}

// ----------------------------------------------------------------------------- painting
let stroke = null;

function previewPoint(event) {
  const box = $("ink").getBoundingClientRect();
  return [(event.clientX - box.left) / box.width * state.size[0], (event.clientY - box.top) / box.height * state.size[1]];
}

function brushWidth() {
  return Number($("brush").value);
}

function inkColour() {
  const c = state.info.classes.find((k) => k.value === state.label);
  return c ? c.colour : "#ffffff";
}

function startStroke(event) {
  if (!state.scan || event.button !== 0) return;
  $("ink").setPointerCapture(event.pointerId);
  stroke = [previewPoint(event)];
  const ctx = $("ink").getContext("2d");
  ctx.strokeStyle = ctx.fillStyle = inkColour();
  ctx.lineWidth = brushWidth();
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.arc(...stroke[0], brushWidth() / 2, 0, 2 * Math.PI);
  ctx.fill();
}

function extendStroke(event) {
  if (!stroke) return;
  const point = previewPoint(event);
  const ctx = $("ink").getContext("2d");
  ctx.beginPath();
  ctx.moveTo(...stroke[stroke.length - 1]);
  ctx.lineTo(...point);
  ctx.stroke();
  stroke.push(point);
}

async function endStroke() {
  if (!stroke) return;
  const points = stroke;
  stroke = null;
  try {
    const body = { points, width: brushWidth(), label: state.label };
    const answer = await call(scanUrl("strokes"), {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    markLabelled();
    status(labelledText(answer.labelled));
    await refreshLabels();
  } catch (error) {
    status(error.message, true);
  }
  const ink = $("ink");
  ink.getContext("2d").clearRect(0, 0, ink.width, ink.height);
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
    const answer = await call(scanUrl("undo"), { method: "POST" });
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
    const answer = await call("/api/train", { method: "POST" });
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
  const cell = (v) => (typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(2)) : v ?? "");
  $("traits").innerHTML = answer.rows.length ? `<table>
    <tr><th>plant</th>${answer.rows.map((r) => `<th>${r.plant}</th>`).join("")}</tr>
    ${columns.map((c) => `<tr><td>${c}</td>${answer.rows.map((r) => `<td>${cell(r[c])}</td>`).join("")}</tr>`).join("")}
  </table>` : "";
}

// ----------------------------------------------------------------------------- wiring
function keys(event) {
  if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
  const value = Number(event.key);
  if (!Number.isNaN(value) && value <= state.info.classes.length) { state.label = value; drawClassButtons(); }
  else if (event.key === "e") { state.label = 0; drawClassButtons(); }
  else if (event.key === "z" && (event.ctrlKey || event.metaKey)) undo();
  else if (event.key === "t") train();
  else if (event.key === "p") { $("show-prediction").click(); }
  else if (event.key === "+" || event.key === "=") setZoom(state.zoom * 1.25);
  else if (event.key === "-") setZoom(state.zoom / 1.25);
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
  ink.addEventListener("pointerdown", startStroke);
  ink.addEventListener("pointermove", extendStroke);
  ink.addEventListener("pointerup", endStroke);
  ink.addEventListener("pointercancel", endStroke);
  $("brush").oninput = () => { $("brush-value").textContent = $("brush").value; };
  $("zoom-in").onclick = () => setZoom(state.zoom * 1.25);
  $("zoom-out").onclick = () => setZoom(state.zoom / 1.25);
  $("zoom-fit").onclick = fitZoom;
  $("show-labels").onchange = refreshLabels;
  $("show-prediction").onchange = refreshModelLayers;
  $("show-uncertainty").onchange = refreshModelLayers;
  $("model").onchange = refreshModelLayers;
  $("opacity").oninput = setOpacity;
  $("undo").onclick = undo;
  $("train").onclick = train;
  document.addEventListener("keydown", keys);
  if (state.info.scans.length) await openScan(state.info.scans[0].key);
}

start();
