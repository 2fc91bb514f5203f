// vaekit latent explorer: the page's state is one latent vector z (and a class y for conditional
// models); sliders, the map and the path all change z, and every change asks the server to decode it.
"use strict";

const $ = (id) => document.getElementById(id);
// ten distinguishable colours for the classes on the map (cycled beyond ten)
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const WEAK_KL = 0.05; // nats: below this a dimension barely moves the decoded picture
const state = { info: null, map: null, z: [], y: null, view: null };

async function api(path, body) {
  const options = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function status(text, isError) {
  $("status").textContent = text;
  $("status").classList.toggle("error", Boolean(isError));
}

// One decode request in flight at a time; while it runs, only the newest wish is kept, so
// dragging a slider never queues a backlog and the picture always ends at the last position.
const live = { busy: false, next: null };
function request(path, body) {
  live.next = { path, body };
  if (!live.busy) pump();
}
async function pump() {
  live.busy = true;
  while (live.next) {
    const { path, body } = live.next;
    live.next = null;
    try {
      showDecoded(await api(path, body));
    } catch (error) {
      status(error.message, true);
    }
  }
  live.busy = false;
}

function showDecoded(result) {
  if (result.image) $("decoded").src = result.image;
  if (result.table) fillTable($("decoded-table"), result.table);
  // a point on the path moves z (sliders, marker); a plain decode echoes the z the page sent, and
  // applying it late would pull a slider back while it is being dragged
  if (result.method && !live.next) setZ(result.z, false);
  status(`decoded in ${result.ms.toFixed(2)} ms on the server`, false);
}

function fillTable(table, row) {
  const body = table.querySelector("tbody");
  body.replaceChildren(...row.columns.map((name, i) => {
    const tr = document.createElement("tr");
    tr.append(cell(name), cell(row.values[i].toPrecision(4)));
    return tr;
  }));
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function decodeCurrent() {
  const body = { z: state.z };
  if (state.info.conditional) body.y = state.y;
  request("/api/decode", body);
}

// z changed: move the sliders and the map's marker; decode unless the server just did
function setZ(z, decode) {
  state.z = z.slice();
  for (const input of document.querySelectorAll("#sliders input")) {
    const d = Number(input.dataset.dim);
    input.value = state.z[d];
    input.nextElementSibling.value = state.z[d].toFixed(2);
  }
  $("zline").textContent = "z = [" + state.z.map((v) => v.toFixed(2)).join(", ") + "]";
  drawMap();
  if (decode) decodeCurrent();
}

function buildSliders() {
  const holder = $("sliders");
  for (const { dim, kl } of state.info.active) {
    const label = document.createElement("label");
    // Burda's covariance test passes dimensions whose KL is too small to change the picture: grey them
    label.className = kl < WEAK_KL ? "slider weak" : "slider";
    label.title = `KL(q(z${dim} | x) || p(z${dim})) averaged over the test examples: ${kl.toFixed(3)} nats`;
    label.innerHTML = `<span>z${dim} <small>KL ${kl.toFixed(2)}</small></span>` +
      `<input type="range" min="-3" max="3" step="0.02" data-dim="${dim}" aria-label="latent dimension ${dim}">` +
      "<output>0.00</output>";
    holder.append(label);
    if (kl < WEAK_KL) $("weak-note").hidden = false;
    const input = label.querySelector("input");
    input.addEventListener("input", () => {
      state.z[dim] = Number(input.value);
      setZ(state.z, true);
    });
  }
}

function colour(i) {
  const labels = state.map.labels;
  return labels ? PALETTE[labels[i] % PALETTE.length] : PALETTE[0];
}

// the map's data -> pixel transform: equal scale on both axes, 6% margin
function mapView(canvas) {
  const pts = state.map.points;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1] || 0);
  const lo = [Math.min(...xs), Math.min(...ys)], hi = [Math.max(...xs), Math.max(...ys)];
  const span = Math.max(hi[0] - lo[0], hi[1] - lo[1], 1e-6) * 1.12;
  const mid = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2];
  const size = canvas.width;
  return {
    toPixel: (p) => [size / 2 + (p[0] - mid[0]) / span * size, size / 2 - ((p[1] || 0) - mid[1]) / span * size],
    toPoint: (px, py) => [mid[0] + (px - size / 2) / size * span, mid[1] - (py - size / 2) / size * span],
  };
}

// the current z seen on the map: its coordinates along the map's basis
function project(z) {
  const { centre, basis } = state.map;
  return basis.map((row) => row.reduce((s, b, d) => s + b * (z[d] - centre[d]), 0));
}

function drawMap() {
  const canvas = $("map");
  if (!state.map) return;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  state.map.points.forEach((p, i) => {
    const [x, y] = state.view.toPixel(p);
    ctx.fillStyle = colour(i);
    ctx.globalAlpha = 0.75;
    ctx.beginPath();
    ctx.arc(x, y, 3.2, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.globalAlpha = 1;
  drawAxes(ctx, canvas);
  for (const which of ["a", "b"]) {
    const i = Number($(which).value), p = state.map.points[i];
    if (p) drawEnd(ctx, state.view.toPixel(p), which.toUpperCase());
  }
  if (state.z.length) drawMarker(ctx, state.view.toPixel(project(state.z)));
}

function drawAxes(ctx, canvas) {
  const m = state.map, pct = (f) => `${Math.round(f * 100)}% of variance`;
  ctx.fillStyle = "#5b6573";
  ctx.font = "12px system-ui, sans-serif";
  const xName = m.pca ? `PC1 (${pct(m.explained[0])})` : "z0";
  const yName = m.pca ? `PC2 (${pct(m.explained[1])})` : "z1";
  ctx.fillText(`→ ${xName}`, 8, canvas.height - 8);
  ctx.save();
  ctx.translate(16, canvas.height - 24);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(`→ ${yName}`, 0, 0);
  ctx.restore();
}

// the two ends of the path: a ring and a letter at each example's posterior mean
function drawEnd(ctx, [x, y], letter) {
  ctx.strokeStyle = "#111";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.arc(x, y, 7, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.fillStyle = "#111";
  ctx.font = "bold 13px system-ui, sans-serif";
  ctx.fillText(letter, x + 9, y - 7);
}

function drawMarker(ctx, [x, y]) {
  ctx.strokeStyle = "#111";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(x - 9, y); ctx.lineTo(x + 9, y);
  ctx.moveTo(x, y - 9); ctx.lineTo(x, y + 9);
  ctx.stroke();
  ctx.beginPath();
  ctx.arc(x, y, 6, 0, 2 * Math.PI);
  ctx.stroke();
}

function onMapClick(event) {
  const canvas = $("map"), rect = canvas.getBoundingClientRect();
  const px = (event.clientX - rect.left) * canvas.width / rect.width;
  const py = (event.clientY - rect.top) * canvas.height / rect.height;
  const p = state.view.toPoint(px, py);
  const { centre, basis } = state.map;
  // back from the plane to the latent space: z = centre + p @ basis
  const z = centre.map((c, d) => c + basis.reduce((s, row, k) => s + (p[k] || 0) * row[d], 0));
  setZ(z, true);
}

function buildLegend() {
  const names = state.info.class_names;
  if (!names || !state.map.labels) return;
  $("legend").replaceChildren(...names.map((name, k) => {
    const span = document.createElement("span");
    span.style.setProperty("--c", PALETTE[k % PALETTE.length]);
    span.textContent = name;
    return span;
  }));
}

function buildClassPicker() {
  if (!state.info.conditional) return;
  const select = $("class");
  state.info.class_names.forEach((name, k) => select.add(new Option(name, k)));
  state.y = 0;
  $("class-picker").hidden = false;
  select.addEventListener("change", () => { state.y = Number(select.value); decodeCurrent(); });
}

async function showEnd(which) {
  const input = $(which), n = state.info.examples;
  const i = Math.min(Math.max(Math.round(Number(input.value)) || 0, 0), n - 1);
  input.value = i;
  const ex = await api(`/api/example/${i}`);
  if (ex.image) $(`thumb-${which}`).src = ex.image;
  const names = state.info.class_names;
  const label = ex.label === null ? "" : `label ${names ? names[ex.label] : ex.label}`;
  // a table's example is its row: name each value (in the training file's units)
  const row = ex.table ? ex.table.columns.map((c, k) => `${c} ${ex.table.values[k].toPrecision(4)}`).join(", ") : "";
  $(`label-${which}`).textContent = [label, row].filter(Boolean).join(" · ");
  return ex;
}

function pathRequest() {
  const t = Number($("t").value);
  $("t-value").value = t.toFixed(2);
  const method = document.querySelector("input[name=method]:checked").value;
  const body = { a: Number($("a").value), b: Number($("b").value), t, method };
  if (state.info.conditional) body.y = state.y;
  request("/api/path", body);
}

function wirePath() {
  $("a").max = $("b").max = state.info.examples - 1;
  for (const which of ["a", "b"]) {
    $(which).addEventListener("change", async () => { await showEnd(which); drawMap(); pathRequest(); });
  }
  $("t").addEventListener("input", pathRequest);
  for (const radio of document.querySelectorAll("input[name=method]")) radio.addEventListener("change", pathRequest);
}

function describe(info) {
  const shape = info.kind === "table" ? `${info.data_shape[0]} columns` : info.data_shape.join(" × ");
  const dims = `${info.active.length} of ${info.latent_dim} latent dimensions active (Cov over x of E[z_d | x] > ${info.active_threshold})`;
  const cond = info.conditional ? ` · conditional on ${info.num_classes} classes` : "";
  return `run folder ${info.run} · data ${info.data} (${info.kind}, ${shape}) · ${dims}${cond} · ` +
    `${info.examples} test examples`;
}

async function main() {
  state.info = await api("/api/info");
  state.map = await api("/api/map");
  $("summary").textContent = describe(state.info);
  if (!state.map.pca) $("map-hint").textContent = "posterior means of the test examples (latent_dim ≤ 2: the axes are z itself); click to decode";
  else $("map-hint").textContent = "posterior means of the test examples, projected on their two principal components; click to decode that point";
  const isTable = state.info.kind !== "image";
  $("decoded").hidden = isTable;
  $("decoded-table").hidden = !isTable;
  for (const which of ["a", "b"]) $(`thumb-${which}`).hidden = isTable;
  state.view = mapView($("map"));
  buildLegend();
  buildClassPicker();
  buildSliders();
  $("map").addEventListener("click", onMapClick);
  $("zero").addEventListener("click", () => setZ(new Array(state.info.latent_dim).fill(0), true));
  // B starts at the first test example whose label differs from A's, so the path crosses classes
  const labels = state.map.labels;
  if (labels) $("b").value = Math.max(labels.findIndex((l) => l !== labels[0]), 1);
  wirePath();
  const first = await showEnd("a");
  await showEnd("b");
  if (state.info.conditional) { state.y = first.label; $("class").value = first.label; }
  setZ(first.mean, true);
}

main().catch((error) => status(`could not load the run: ${error.message}`, true));
