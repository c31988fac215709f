// toylab lab: the page. Plain JavaScript, no build step.
// It keeps the whole setup in the URL hash, talks to the server over one WebSocket (JSON
// commands out; JSON messages and binary frames in) and draws the latest frame on each
// animation frame, acknowledging it so the server paces itself to what the page can draw.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"];
const PANEL = 300; // CSS pixels of a panel

// State read by the browser tests and the benchmark (window.lab).
const lab = {
  hello: null, setup: null, setupId: 0, target: null, frame: null, drawn: 0, drawnSeq: 0,
  step: 0, kl: {}, realKl: null, playing: false, speed: 10, mode: "hist", overlays: true,
  history: {}, message: "", error: "", saved: null, connected: false, pins: null,
  ink: null, frameTimes: [], pendingHash: null, acceptedSetup: 0, refusedSetup: 0,
};
window.lab = lab;

let ws = null;
let pendingFrame = null; // latest received, not yet drawn
let drawScheduled = false;

// ------------------------------------------------------------------ messages / socket
function token() { return new URLSearchParams(location.search).get("token"); }

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const t = token();
  ws = new WebSocket(`${proto}//${location.host}/ws${t ? "?token=" + encodeURIComponent(t) : ""}`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { lab.connected = true; $("conn").textContent = "connected"; $("conn").classList.remove("bad"); };
  ws.onclose = () => {
    lab.connected = false;
    $("conn").textContent = "disconnected: is `toylab lab` still running? reload to reconnect";
    $("conn").classList.add("bad");
    setPlaying(false);
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") onJson(JSON.parse(ev.data));
    else onBinary(ev.data);
  };
}

function send(obj) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
}

function say(text, isError = false) {
  const m = $("message");
  m.textContent = text;
  m.classList.toggle("error", isError);
  lab.message = text;
  if (isError) lab.error = text;
}

function onJson(msg) {
  switch (msg.type) {
    case "hello": onHello(msg); break;
    case "error":
      say(msg.message, true);
      if (msg.for === "setup" && typeof msg.id === "number") {
        lab.refusedSetup = Math.max(lab.refusedSetup, msg.id);
        if (msg.id === setupCounter) lab.pendingHash = null;
      }
      break;
    case "state": setPlaying(msg.playing); break;
    case "upload": loadInk(b64ToBytes(msg.pixels)); selectDrawing(); say("picture loaded into the drawing: edit it or press play"); break;
    case "saving": say("saving the run directory…"); break;
    case "saved":
      lab.saved = msg.path;
      say(`saved to ${msg.path}\nread it with: toylab gif ${msg.path}  or  toylab.load_run(...)`);
      break;
  }
}

function parseBinary(buf) {
  const n = new DataView(buf).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
  let base = 4 + n;
  base += (8 - (base % 8)) % 8;
  const arrays = {};
  for (const spec of header.arrays) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const off = base + spec.offset;
    let a;
    if (spec.dtype === "<f4") a = new Float32Array(buf, off, count);
    else if (spec.dtype === "<u2") a = new Uint16Array(buf, off, count);
    else if (spec.dtype === "|u1") a = new Uint8Array(buf, off, count);
    else throw new Error("unknown dtype " + spec.dtype);
    (arrays[spec.name] = arrays[spec.name] || {})[spec.kind || "data"] = a;
  }
  return { header, arrays };
}

function onBinary(buf) {
  const { header, arrays } = parseBinary(buf);
  if (header.type === "target") {
    if (typeof header.tag === "number") lab.acceptedSetup = header.tag;
    if (lab.acceptedSetup === setupCounter) lab.goodSetup = lab.setup;
    if (lab.pendingHash !== null && lab.acceptedSetup === setupCounter) showHash();
    lab.target = { ...header, array: arrays.target.data };
    lab.setupId = header.setup_id;
    lab.realKl = header.real_kl;
    lab.history = {};
    for (const m of header.methods) lab.history[m] = [];
    lab.pins = null;
    buildPanels();
    drawTarget();
    return;
  }
  if (header.setup_id !== lab.setupId) { send({ type: "ack", seq: header.seq }); return; }
  if (pendingFrame) send({ type: "ack", seq: pendingFrame.header.seq }); // superseded, never drawn
  lab.received = (lab.received || 0) + 1;
  pendingFrame = { header, arrays };
  record(header);
  if (!drawScheduled) { drawScheduled = true; requestAnimationFrame(drawPending); }
}

function record(h) {
  lab.step = h.step;
  lab.kl = h.kl;
  lab.realKl = h.real_kl;
  for (const [m, v] of Object.entries(h.kl)) {
    const hist = lab.history[m];
    if (!hist || v === null) continue;
    const last = hist[hist.length - 1];
    if (last && last[0] > h.global_step) hist.length = 0; // a reset
    if (!last || last[0] !== h.global_step) hist.push([h.global_step, v]);
    if (hist.length > 3000) lab.history[m] = hist.filter((_, i) => i % 2 === 0 || i === hist.length - 1);
  }
  if (h.done) setPlaying(false);
}

function drawPending() {
  drawScheduled = false;
  const f = pendingFrame;
  if (!f) return;
  pendingFrame = null;
  lab.frame = f;
  const t0 = performance.now();
  drawFrame(f);
  lab.drawMs = 0.9 * (lab.drawMs || 0) + 0.1 * (performance.now() - t0); // benchmark figure
  lab.drawn += 1;
  lab.drawnSeq = f.header.seq;
  const now = performance.now();
  if (f.header.setup_id !== lab.drawnSetupId) {
    // the first picture of a new setup: how long after the change was it on screen?
    lab.drawnSetupId = f.header.setup_id;
    if (lab.sentSetupAt) lab.setupLatency = now - lab.sentSetupAt;
  }
  lab.frameTimes.push(now);
  if (lab.frameTimes.length > 120) lab.frameTimes.shift();
  send({ type: "ack", seq: f.header.seq });
}

// ------------------------------------------------------------------ form
function onHello(h) {
  lab.hello = h;
  const sel = $("target");
  sel.innerHTML = "";
  for (const t of h.targets) sel.add(new Option(t.name, t.name));
  sel.add(new Option("drawing / upload", "drawing"));
  const methods = $("methods");
  methods.innerHTML = "";
  h.methods.forEach((m) => {
    const l = document.createElement("label");
    l.innerHTML = `<input type="checkbox" name="method" value="${m}"> ${m}`;
    methods.appendChild(l);
  });
  for (const key of ["optimizer", "distance", "beta_schedule"]) {
    const s = $(key);
    s.innerHTML = "";
    for (const c of h.choices[key]) s.add(new Option(c, c));
  }
  const sp = $("speed");
  sp.innerHTML = "";
  for (const v of h.speeds) {
    const text = v === 0 ? "full speed" : v < 1 ? `1 step / ${Math.round(1 / v)} frames` : v === 1 ? "1 step / frame" : `${v} steps / frame`;
    sp.add(new Option(text, String(v)));
  }
  $("nodes").max = h.limits.max_nodes;
  $("nodes").min = h.limits.min_nodes;
  lab.ink = new Float32Array(h.draw_size * h.draw_size);
  applyUrl().then(() => sendSetup(false));
}

function paramInputs(name) {
  const t = lab.hello.targets.find((x) => x.name === name);
  const box = $("params");
  box.innerHTML = "";
  $("target-summary").textContent = t ? t.summary : "draw with the brush, or upload a picture; ink is mass";
  $("draw-tools").hidden = name !== "drawing";
  if (!t) return;
  for (const p of t.params) {
    const l = document.createElement("label");
    l.title = p.help;
    const id = "p." + p.name;
    if (p.kind === "bool") l.innerHTML = `${p.name} <input id="${id}" type="checkbox">`;
    else if (p.kind === "str" && String(p.default).includes("\n")) l.innerHTML = `${p.name} <textarea id="${id}" rows="3"></textarea>`;
    else l.innerHTML = `${p.name} <input id="${id}" type="${p.kind === "str" ? "text" : "number"}" step="any">`;
    box.appendChild(l);
    const input = document.getElementById(id);
    if (p.kind === "bool") input.checked = !!p.default; else input.value = p.default;
    input.dataset.kind = p.kind;
    input.dataset.default = JSON.stringify(p.default);
    input.addEventListener("change", onFormChange);
  }
}

const SETTING_IDS = ["nodes", "batch", "steps", "seed", "lr", "optimizer", "distance", "split_ratio",
  "prune_ratio", "max_splits", "beta_start", "beta_end", "beta_schedule", "bins"];
const INT_SETTINGS = new Set(["nodes", "batch", "steps", "seed", "max_splits", "bins"]);

function numberOrText(v, isInt) {
  if (v === "") return null;
  const x = Number(v);
  if (!Number.isFinite(x)) return v; // the server names the bad value
  return isInt && Number.isInteger(x) ? x : x;
}

function readForm() {
  const target = $("target").value;
  const setup = { target, settings: {} };
  if (target === "drawing") {
    setup.drawing = bytesToB64(inkBytes());
  } else {
    setup.params = {};
    for (const input of $("params").querySelectorAll("input, textarea")) {
      const key = input.id.slice(2);
      let v;
      if (input.dataset.kind === "bool") v = input.checked;
      else if (input.dataset.kind === "str") v = input.value;
      else v = numberOrText(input.value, input.dataset.kind === "int");
      if (JSON.stringify(v) !== input.dataset.default) setup.params[key] = v;
    }
  }
  const d = lab.hello.defaults;
  for (const id of SETTING_IDS) {
    const el = $(id);
    let v = el.tagName === "SELECT" ? el.value : numberOrText(el.value, INT_SETTINGS.has(id));
    if (v === null && id !== "lr") continue;
    if (id === "lr" && v === null) continue;
    if (v !== d[id]) setup.settings[id] = v;
  }
  setup.settings.methods = [...document.querySelectorAll("input[name=method]:checked")].map((x) => x.value);
  return setup;
}

function writeForm(setup) {
  const d = lab.hello.defaults;
  $("target").value = setup.target;
  paramInputs(setup.target);
  for (const [k, v] of Object.entries(setup.params || {})) {
    const el = document.getElementById("p." + k);
    if (!el) continue;
    if (el.type === "checkbox") el.checked = !!v; else el.value = v;
  }
  const s = { ...d, ...(setup.settings || {}) };
  for (const id of SETTING_IDS) $(id).value = s[id] === null || s[id] === undefined ? "" : s[id];
  const methods = new Set(s.methods || d.methods);
  for (const box of document.querySelectorAll("input[name=method]")) box.checked = methods.has(box.value);
}

// The URL hash holds the setup: t=target, p.NAME=param, settings by name, m=methods,
// draw=deflated ink (base64url), v=view, sp=speed.
async function setupToHash(setup) {
  const q = new URLSearchParams();
  q.set("t", setup.target);
  for (const [k, v] of Object.entries(setup.params || {})) q.set("p." + k, JSON.stringify(v));
  for (const [k, v] of Object.entries(setup.settings)) {
    if (k === "methods") q.set("m", v.join(","));
    else q.set(k, String(v));
  }
  if (setup.target === "drawing") q.set("draw", await deflate(inkBytes()));
  q.set("v", lab.mode);
  q.set("sp", String(lab.speed));
  if (!lab.overlays) q.set("ov", "0");
  return q.toString();
}

async function applyUrl() {
  const h = lab.hello;
  const q = new URLSearchParams(location.hash.slice(1));
  const setup = JSON.parse(JSON.stringify(h.default_setup));
  if (q.has("t")) setup.target = q.get("t");
  setup.params = {};
  setup.settings = { ...setup.settings };
  for (const [k, v] of q) {
    if (k.startsWith("p.")) { try { setup.params[k.slice(2)] = JSON.parse(v); } catch { setup.params[k.slice(2)] = v; } }
    else if (k === "m") setup.settings.methods = v.split(",").filter(Boolean);
    else if (SETTING_IDS.includes(k)) setup.settings[k] = $(k).tagName === "SELECT" ? v : Number(v);
  }
  if (q.has("v")) setMode(q.get("v"));
  if (q.has("sp")) { lab.speed = Number(q.get("sp")); $("speed").value = q.get("sp"); }
  else $("speed").value = String(lab.speed);
  lab.overlays = q.get("ov") !== "0";
  $("overlays").checked = lab.overlays;
  if (!h.targets.some((t) => t.name === setup.target) && setup.target !== "drawing") {
    say(`unknown target ${setup.target} in the link; showing the default`, true);
    setup.target = h.default_setup.target;
  }
  if (setup.target === "drawing" && q.has("draw")) {
    try { loadInk(await inflate(q.get("draw"))); } catch { say("the link's drawing could not be read", true); }
  }
  writeForm(setup);
  send({ type: "speed", value: lab.speed });
  send({ type: "view", mode: lab.mode });
}

let setupCounter = 0;
async function sendSetup(play) {
  const setup = readForm();
  lab.setup = setup;
  lab.sentSetupAt = performance.now();
  setupCounter += 1;
  send({ type: "setup", id: setupCounter, setup, play });
  // The URL takes the setup once the server accepted it (its target arrives), so a refused
  // value never ends up in a shared link.
  const mine = setupCounter;
  const hash = await setupToHash(setup);
  if (lab.refusedSetup === mine || mine !== setupCounter) return;
  lab.pendingHash = hash;
  if (lab.acceptedSetup === mine) showHash();
}

function showHash() {
  if (lab.pendingHash === null) return;
  history.replaceState(null, "", "#" + lab.pendingHash);
  $("link").value = location.href;
  lab.pendingHash = null;
}

function onFormChange() {
  if ($("target").value !== (lab.setup && lab.setup.target)) paramInputs($("target").value);
  say("");
  lab.error = "";
  sendSetup(lab.playing);
}

// ------------------------------------------------------------------ transport
function setPlaying(p) {
  lab.playing = p;
  $("play").textContent = p ? "❚❚ pause" : "▶ play";
  $("state").textContent = p ? "playing" : "paused";
}
function setMode(m) {
  lab.mode = m === "points" ? "points" : "hist";
  for (const r of document.querySelectorAll("input[name=view]")) r.checked = r.value === lab.mode;
}
async function updateHash() {
  if (!lab.goodSetup) return;
  history.replaceState(null, "", "#" + (await setupToHash(lab.goodSetup)));
  $("link").value = location.href;
}

function bindControls() {
  $("target").addEventListener("change", onFormChange);
  for (const id of SETTING_IDS) $(id).addEventListener("change", onFormChange);
  $("methods").addEventListener("change", onFormChange);
  $("play").onclick = () => { say(""); send({ type: lab.playing ? "pause" : "play" }); };
  $("step").onclick = () => send({ type: "step" });
  $("reset").onclick = () => { lab.history = {}; send({ type: "reset" }); };
  $("speed").onchange = () => { lab.speed = Number($("speed").value); send({ type: "speed", value: lab.speed }); updateHash(); };
  for (const r of document.querySelectorAll("input[name=view]")) {
    r.onchange = () => { setMode(r.value); send({ type: "view", mode: lab.mode }); updateHash(); };
  }
  $("overlays").onchange = () => { lab.overlays = $("overlays").checked; if (lab.frame) drawFrame(lab.frame); updateHash(); };
  $("save").onclick = () => send({ type: "save" });
  $("copy").onclick = async () => {
    $("link").value = location.href;
    try { await navigator.clipboard.writeText(location.href); say("link copied: it opens this same experiment"); }
    catch { $("link").select(); say("select the link below and copy it"); }
  };
  $("upload").onchange = () => {
    const file = $("upload").files[0];
    if (!file) return;
    if (file.size > lab.hello.limits.max_upload_bytes) {
      say(`the picture is ${(file.size / 1e6).toFixed(1)} MB; at most ${lab.hello.limits.max_upload_bytes / 1e6} MB`, true);
      return;
    }
    const reader = new FileReader();
    reader.onload = () => {
      const data = String(reader.result).split(",", 2)[1] || "";
      send({ type: "upload", data, invert: $("invert").checked });
    };
    reader.readAsDataURL(file);
    $("upload").value = "";
  };
  $("clear").onclick = () => { lab.ink.fill(0); paintInk(); };
  bindDrawing();
  bindHover();
}

// ------------------------------------------------------------------ drawing
function inkBytes() {
  const b = new Uint8Array(lab.ink.length);
  for (let i = 0; i < b.length; i++) b[i] = Math.round(Math.max(0, Math.min(1, lab.ink[i])) * 255);
  return b;
}
function loadInk(bytes) {
  for (let i = 0; i < lab.ink.length; i++) lab.ink[i] = (bytes[i] || 0) / 255;
  paintInk();
}
function paintInk() {
  const c = $("draw"), n = lab.hello.draw_size;
  const small = document.createElement("canvas");
  small.width = small.height = n;
  const ctx = small.getContext("2d");
  const img = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const v = Math.round(lab.ink[i] * 255);
    img.data[4 * i] = v; img.data[4 * i + 1] = v; img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  const g = c.getContext("2d");
  g.imageSmoothingEnabled = false;
  g.drawImage(small, 0, 0, c.width, c.height);
}
function selectDrawing() {
  $("target").value = "drawing";
  paramInputs("drawing");
  sendSetup(lab.playing);
}
function stamp(x, y) {
  const n = lab.hello.draw_size;
  const r = Number($("brush-size").value) * n / 128;
  const soft = Number($("softness").value) / 100;
  const erase = document.querySelector("input[name=tool]:checked").value === "eraser";
  const hard = r * (1 - soft);
  for (let j = Math.max(0, Math.floor(y - r)); j <= Math.min(n - 1, Math.ceil(y + r)); j++) {
    for (let i = Math.max(0, Math.floor(x - r)); i <= Math.min(n - 1, Math.ceil(x + r)); i++) {
      const d = Math.hypot(i + 0.5 - x, j + 0.5 - y);
      if (d > r) continue;
      const p = d <= hard ? 1 : (r - d) / Math.max(r - hard, 1e-6);
      const k = j * n + i;
      lab.ink[k] = erase ? Math.min(lab.ink[k], 1 - p) : Math.max(lab.ink[k], p);
    }
  }
}
function bindDrawing() {
  const c = $("draw");
  let down = false, last = null;
  const pos = (ev) => {
    const r = c.getBoundingClientRect(), n = lab.hello.draw_size;
    return [(ev.clientX - r.left) / r.width * n, (ev.clientY - r.top) / r.height * n];
  };
  const line = (a, b) => {
    const steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1])));
    for (let s = 1; s <= steps; s++) stamp(a[0] + (b[0] - a[0]) * s / steps, a[1] + (b[1] - a[1]) * s / steps);
  };
  c.addEventListener("pointerdown", (ev) => { down = true; c.setPointerCapture(ev.pointerId); last = pos(ev); stamp(...last); paintInk(); });
  c.addEventListener("pointermove", (ev) => { if (!down) return; const p = pos(ev); line(last, p); last = p; paintInk(); });
  const end = () => { if (!down) return; down = false; if ($("target").value === "drawing") sendSetup(lab.playing); };
  c.addEventListener("pointerup", end);
  c.addEventListener("pointercancel", end);
}

// ------------------------------------------------------------------ base64 / deflate
function bytesToB64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
function b64ToBytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
async function deflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  const out = new Uint8Array(await new Response(stream).arrayBuffer());
  return bytesToB64(out).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
async function inflate(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bytes = b64ToBytes(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// ------------------------------------------------------------------ panels
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function viridis(t) {
  t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - i;
  const a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}
const LUT = new Uint8Array(256 * 3);
for (let i = 0; i < 256; i++) LUT.set(viridis(i / 255).map(Math.round), 3 * i);

function buildPanels() {
  const box = $("panels");
  box.innerHTML = "";
  const names = ["target", ...lab.target.methods];
  names.forEach((name, i) => {
    const div = document.createElement("div");
    div.className = "panel";
    div.id = "panel-" + name;
    const label = name === "target" ? `target: ${lab.target.setup.target}` : name;
    div.innerHTML = `<h3><span>${label}</span><span class="kl"></span></h3><canvas></canvas><div class="counters"></div>`;
    if (name !== "target") div.querySelector("h3 span").style.color = COLORS[(i - 1) % COLORS.length];
    box.appendChild(div);
  });
  const legend = $("legend");
  legend.innerHTML = lab.target.methods.map((m, i) => `<span style="--c:${COLORS[i % COLORS.length]}">${m}</span>`).join("")
    + `<span style="--c:#888">real samples (K i.i.d. draws)</span>`;
  $("overlay-label").hidden = !lab.target.overlays;
}

// Cell colour scale: target probability p, and node counts c / K, share one vmax so that a
// perfect fit looks like the target.
function vmax() {
  let m = 0;
  for (const v of lab.target.array) if (v > m) m = v;
  return m;
}

function drawTarget() {
  const t = lab.target, n = t.bins;
  const c = document.querySelector("#panel-target canvas");
  c.width = c.height = n;
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(n, n);
  const top = vmax();
  for (let i = 0; i < n * n; i++) {
    const k = Math.min(255, Math.round(t.array[i] / top * 255)) * 3;
    img.data[4 * i] = LUT[k]; img.data[4 * i + 1] = LUT[k + 1]; img.data[4 * i + 2] = LUT[k + 2]; img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  lab.targetDrawn = (lab.targetDrawn || 0) + 1;
  document.querySelector("#panel-target .counters").textContent =
    `K = ${t.nodes.toLocaleString()} · ${t.steps.toLocaleString()} steps`;
  document.querySelector("#panel-target .kl").textContent =
    t.real_kl === null ? "" : `real KL ${fmt(t.real_kl)}`;
}

function fmt(x) {
  if (x === null || x === undefined) return "–";
  return x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toPrecision(3);
}

function drawFrame(f) {
  const h = f.header, t = lab.target;
  $("step-counter").textContent = `step ${h.step.toLocaleString()} / ${t.steps.toLocaleString()}`;
  if (lab.frameTimes.length > 10) {
    const ts = lab.frameTimes, span = (ts[ts.length - 1] - ts[0]) / 1000;
    $("fps").textContent = span > 0 ? `· ${((ts.length - 1) / span).toFixed(0)} frames/s` : "";
  }
  const top = vmax() * t.nodes;
  const captions = [];
  t.methods.forEach((name) => {
    const panel = $("panel-" + name);
    if (!panel) return;
    const a = f.arrays[name];
    const c = panel.querySelector("canvas");
    if (t.overlays && lab.overlays && a.pos) drawPoints(c, a.pos, a, name);
    else if (a.hist) drawHist(c, a.hist, t.bins, top);
    else drawPoints(c, a.pos, null, name);
    panel.querySelector(".kl").textContent = `KL ${fmt(h.kl[name])}`;
    const dead = h.dead[name] === null ? `dead: – (after ${t.window} steps)` : `dead ${h.dead[name].toLocaleString()}`;
    panel.querySelector(".counters").textContent = `${dead} · splits ${h.splits[name].toLocaleString()}`;
    const ev = (h.events || {})[name] || [];
    if (ev.length && t.overlays && lab.overlays) {
      const e = ev[ev.length - 1];
      captions.push(`${name}, step ${e.step}: node ${e.split} split into slot ${e.pruned} (${e.reason})` + (ev.length > 1 ? `, +${ev.length - 1} more` : ""));
    }
  });
  if (captions.length) $("caption").textContent = captions.join(" · ");
  drawChart();
}

function drawHist(c, hist, n, top) {
  if (c.width !== n || c.height !== n) c.width = c.height = n;
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(n, n);
  const d = img.data, scale = 255 / top;
  for (let i = 0; i < n * n; i++) {
    const k = Math.min(255, Math.round(hist[i] * scale)) * 3;
    d[4 * i] = LUT[k]; d[4 * i + 1] = LUT[k + 1]; d[4 * i + 2] = LUT[k + 2]; d[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function toPx(x, y, size) { return [(x + 1) / 2 * size, (1 - y) / 2 * size]; }

function drawPoints(c, pos, ov, name) {
  const size = PANEL * Math.min(2, window.devicePixelRatio || 1);
  if (c.width !== size || c.height !== size) c.width = c.height = size;
  const ctx = c.getContext("2d");
  const k = pos.length / 2;
  if (!ov) {
    const img = ctx.createImageData(size, size);
    const d = img.data;
    for (let i = 3; i < d.length; i += 4) d[i] = 255;
    const dot = k <= 2000 ? 3 : k <= 20000 ? 2 : 1; // a node stays visible at small K
    for (let i = 0; i < k; i++) {
      const px = Math.floor((pos[2 * i] + 1) / 2 * size), py = Math.floor((1 - pos[2 * i + 1]) / 2 * size);
      for (let dy = 0; dy < dot; dy++) {
        for (let dx = 0; dx < dot; dx++) {
          const x = px + dx, y = py + dy;
          if (x < 0 || y < 0 || x >= size || y >= size) continue;
          const o = 4 * (y * size + x);
          d[o] = 253; d[o + 1] = 231; d[o + 2] = 37;
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    return;
  }
  // Teaching overlays: the target faintly, each node's region, nodes by share, dead crosses,
  // the hovered node's region, split arrows.
  drawOverlay(ctx, size, pos, ov, name);
}

function drawOverlay(ctx, size, pos, ov, name) {
  const t = lab.target, g = lab.hello.limits.region_grid, k = pos.length / 2;
  const img = ctx.createImageData(g, g);
  const labels = ov.labels, pin = lab.pins && lab.pins.method === name ? lab.pins.node : -1;
  const top = vmax(), tb = t.bins;
  for (let r = 0; r < g; r++) {
    for (let col = 0; col < g; col++) {
      const i = r * g + col;
      const q = t.array[Math.floor(r * tb / g) * tb + Math.floor(col * tb / g)] / top;
      let v = 20 + 70 * Math.min(1, q);
      const edge = (col + 1 < g && labels[i] !== labels[i + 1]) || (r + 1 < g && labels[i] !== labels[i + g]);
      let red = v, green = v, blue = v;
      if (labels[i] === pin) { red = v * 0.6 + 60; green = v * 0.6 + 80; blue = v * 0.6 + 110; }
      if (edge) { red = green = blue = 150; }
      img.data[4 * i] = red; img.data[4 * i + 1] = green; img.data[4 * i + 2] = blue; img.data[4 * i + 3] = 255;
    }
  }
  const tmp = document.createElement("canvas");
  tmp.width = tmp.height = g;
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, size, size);
  const rad = Math.max(2, Math.min(7, 60 / Math.sqrt(k))) * size / PANEL;
  for (let i = 0; i < k; i++) {
    const [px, py] = toPx(pos[2 * i], pos[2 * i + 1], size);
    if (ov.dead[i]) {
      ctx.strokeStyle = "#999"; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(px - rad, py - rad); ctx.lineTo(px + rad, py + rad);
      ctx.moveTo(px + rad, py - rad); ctx.lineTo(px - rad, py + rad); ctx.stroke();
      continue;
    }
    const s = ov.share[i];
    // blue under the fair share 1/K, red over it, white at it (log scale, saturating at x4)
    const u = Math.max(-1, Math.min(1, Math.log2(Math.max(s, 1e-3)) / 2));
    const col = u < 0 ? [255 * (1 + u), 255 * (1 + u), 255] : [255, 255 * (1 - u), 255 * (1 - u)];
    ctx.fillStyle = `rgb(${col.map(Math.round).join(",")})`;
    ctx.beginPath(); ctx.arc(px, py, rad * (i === pin ? 1.6 : 1), 0, 2 * Math.PI); ctx.fill();
  }
  const ev = (lab.frame && lab.frame.header.events[name]) || [];
  ctx.strokeStyle = "#ff8c00"; ctx.fillStyle = "#ff8c00"; ctx.lineWidth = 2 * size / PANEL;
  for (const e of ev) {
    const [x0, y0] = toPx(e.from[0], e.from[1], size), [x1, y1] = toPx(e.to[0], e.to[1], size);
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
    const a = Math.atan2(y1 - y0, x1 - x0), hl = 8 * size / PANEL;
    ctx.beginPath(); ctx.moveTo(x1, y1);
    ctx.lineTo(x1 - hl * Math.cos(a - 0.4), y1 - hl * Math.sin(a - 0.4));
    ctx.lineTo(x1 - hl * Math.cos(a + 0.4), y1 - hl * Math.sin(a + 0.4)); ctx.fill();
  }
}

// Hover or click a node (teaching overlays): its share, its region highlighted.
function bindHover() {
  const tip = $("tooltip");
  const find = (ev) => {
    const canvas = ev.target;
    if (!(canvas instanceof HTMLCanvasElement) || !lab.frame || !lab.target || !lab.target.overlays || !lab.overlays) return null;
    const panel = canvas.closest(".panel");
    if (!panel || panel.id === "panel-target") return null;
    const name = panel.id.slice(6), a = lab.frame.arrays[name];
    if (!a || !a.pos) return null;
    const r = canvas.getBoundingClientRect();
    const x = (ev.clientX - r.left) / r.width * 2 - 1, y = 1 - (ev.clientY - r.top) / r.height * 2;
    let best = -1, bd = Infinity;
    for (let i = 0; i < a.pos.length / 2; i++) {
      const d = Math.hypot(a.pos[2 * i] - x, a.pos[2 * i + 1] - y);
      if (d < bd) { bd = d; best = i; }
    }
    const near = bd * r.width / 2 < 12;
    return near ? { method: name, node: best, a } : null;
  };
  const show = (hit, ev) => {
    const s = hit.a.share[hit.node], dead = hit.a.dead[hit.node];
    const g = lab.hello.limits.region_grid;
    let cells = 0;
    for (const l of hit.a.labels) if (l === hit.node) cells++;
    tip.textContent = `${hit.method} node ${hit.node}: match share ${s.toFixed(2)}/K` +
      `${dead ? " (dead: no match in the last " + lab.target.window + " steps)" : ""} · region ${(100 * cells / (g * g)).toFixed(1)}% of the square`;
    tip.style.left = ev.clientX + 12 + "px";
    tip.style.top = ev.clientY + 12 + "px";
    tip.hidden = false;
  };
  $("panels").addEventListener("mousemove", (ev) => {
    const hit = find(ev);
    if (!hit) { tip.hidden = true; return; }
    show(hit, ev);
  });
  $("panels").addEventListener("mouseleave", () => { tip.hidden = true; });
  $("panels").addEventListener("click", (ev) => {
    const hit = find(ev);
    lab.pins = hit ? { method: hit.method, node: hit.node } : null;
    if (hit) show(hit, ev);
    if (lab.frame) drawFrame(lab.frame);
  });
}

// ------------------------------------------------------------------ KL chart
function drawChart() {
  const c = $("chart");
  const w = c.clientWidth, hgt = c.clientHeight;
  if (c.width !== w) c.width = w;
  if (c.height !== hgt) c.height = hgt;
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, w, hgt);
  const series = Object.values(lab.history);
  let maxStep = 1, lo = Infinity, hi = -Infinity;
  for (const s of series) for (const [st, v] of s) { maxStep = Math.max(maxStep, st); if (v > 0) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
  if (lab.realKl) { lo = Math.min(lo, lab.realKl); hi = Math.max(hi, lab.realKl); }
  if (!Number.isFinite(lo)) return;
  lo = Math.log10(lo) - 0.1; hi = Math.log10(hi) + 0.1;
  const L = 46, R = 10, T = 10, B = 22;
  const X = (s) => L + (w - L - R) * s / maxStep;
  const Y = (v) => T + (hgt - T - B) * (hi - Math.log10(v)) / (hi - lo);
  ctx.strokeStyle = "#ddd"; ctx.fillStyle = "#666"; ctx.font = "11px sans-serif"; ctx.lineWidth = 1;
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) {
    ctx.beginPath(); ctx.moveTo(L, Y(10 ** e)); ctx.lineTo(w - R, Y(10 ** e)); ctx.stroke();
    ctx.fillText(`1e${e}`, 4, Y(10 ** e) + 4);
  }
  ctx.fillText("KL (nats, log)", L + 4, T + 10);
  ctx.fillText(`step ${maxStep.toLocaleString()}`, w - R - 80, hgt - 6);
  if (lab.realKl) {
    ctx.strokeStyle = "#888"; ctx.setLineDash([5, 4]);
    ctx.beginPath(); ctx.moveTo(L, Y(lab.realKl)); ctx.lineTo(w - R, Y(lab.realKl)); ctx.stroke();
    ctx.setLineDash([]);
  }
  Object.entries(lab.history).forEach(([m, s], i) => {
    ctx.strokeStyle = COLORS[lab.target.methods.indexOf(m) % COLORS.length];
    ctx.lineWidth = 2;
    ctx.beginPath();
    s.forEach(([st, v], j) => { if (v <= 0) return; if (j === 0) ctx.moveTo(X(st), Y(v)); else ctx.lineTo(X(st), Y(v)); });
    ctx.stroke();
  });
}

bindControls();
connect();
