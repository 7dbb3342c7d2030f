// semstyle's browser app: plain JavaScript over the HTTP API (/v1/...). Nothing is loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { photo: null, styleId: null, styleFile: null, result: null, lastRequest: null };
window.semstyle = state;  // for tests and the curious
// "Closer to the painting": the style_fit steps asked for (20, the typical count of --style-fit)
const STYLE_FIT_STEPS = 20;

// -- tabs ---------------------------------------------------------------------
for (const tab of document.querySelectorAll("[role=tab]")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll("[role=tab]")) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (tab.id !== "tab-live" && live.socket) stopLive("Stopped: the camera is off while another tab is open.");
  });
  tab.addEventListener("keydown", (e) => {
    // arrow keys move between the tabs (the ARIA tabs pattern); Enter or Space opens one
    const tabs = [...document.querySelectorAll("[role=tab]")];
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (!step) return;
    e.preventDefault();
    const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
    next.focus();
    next.click();
  });
}

// -- gallery ------------------------------------------------------------------
async function loadGallery() {
  const styles = await (await fetch("/v1/styles")).json();
  const box = $("gallery");
  for (const style of styles) {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "option");
    button.setAttribute("aria-selected", "false");
    button.dataset.id = style.id;
    button.tabIndex = -1;  // one tab stop for the whole gallery: the chosen painting; arrow keys move
    button.title = `${style.painter ? style.painter + ": " : ""}${style.title}`;
    const img = document.createElement("img");
    img.src = style.thumbnail;
    img.alt = button.title;
    img.loading = "lazy";
    button.append(img);
    button.addEventListener("click", () => chooseStyle(style.id));
    box.append(button);
  }
  if (styles.length) chooseStyle(styles.find((s) => s.id === "starry_night") ? "starry_night" : styles[0].id);
}

$("gallery").addEventListener("keydown", (e) => {
  const buttons = [...$("gallery").children];
  const at = buttons.indexOf(document.activeElement);
  if (at < 0) return;
  const columns = buttons.filter((b) => b.offsetTop === buttons[0].offsetTop).length || 1;
  const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns,
                  Home: -at, End: buttons.length - 1 - at };
  if (!(e.key in moves)) return;
  e.preventDefault();
  const next = buttons[Math.max(0, Math.min(buttons.length - 1, at + moves[e.key]))];
  chooseStyle(next.dataset.id);
  next.focus();
});

function galleryTabStop() {
  // the chosen painting is the gallery's tab stop, or the first one when an own painting is used
  const buttons = [...$("gallery").children];
  const chosen = buttons.find((b) => b.getAttribute("aria-selected") === "true") || buttons[0];
  for (const b of buttons) b.tabIndex = b === chosen ? 0 : -1;
}

function chooseStyle(id) {
  state.styleId = id;
  state.styleFile = null;
  $("own-style").value = "";
  for (const b of $("gallery").children) b.setAttribute("aria-selected", String(b.dataset.id === id));
  galleryTabStop();
  ready();
}

$("own-style").addEventListener("change", (event) => {
  if (!event.target.files.length) return;
  state.styleFile = event.target.files[0];
  state.styleId = null;
  for (const b of $("gallery").children) b.setAttribute("aria-selected", "false");
  galleryTabStop();
  ready();
});

// -- photo, drop zone, brush --------------------------------------------------
function setPhoto(file) {
  state.photo = file;
  const url = URL.createObjectURL(file);
  $("preview").onload = () => {
    const canvas = $("brush-canvas");
    canvas.width = $("preview").naturalWidth;
    canvas.height = $("preview").naturalHeight;
    for (const box of [$("canvas-box"), $("compare")]) box.style.setProperty("--aspect", canvas.width / canvas.height);
    clearBrush();
  };
  $("preview").src = url;
  $("before").src = url;
  $("canvas-box").hidden = false;
  $("compare").hidden = true;
  ready();
}

$("photo").addEventListener("change", (e) => e.target.files.length && setPhoto(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) setPhoto(e.dataTransfer.files[0]);
});
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("photo").click(); });

let painted = false;
function clearBrush() {
  const canvas = $("brush-canvas");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  painted = false;
}
$("clear-brush").addEventListener("click", clearBrush);

function brushMode() { return document.querySelector("input[name=brush]:checked").value; }

(function brush() {
  const canvas = $("brush-canvas");
  let down = false;
  const paint = (e) => {
    if (!down || brushMode() === "off") return;
    const box = canvas.getBoundingClientRect();
    const x = (e.clientX - box.left) * canvas.width / box.width;
    const y = (e.clientY - box.top) * canvas.height / box.height;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = brushMode() === "mask" ? "rgba(53, 86, 216, 0.45)" : "rgba(240, 165, 0, 0.45)";
    ctx.beginPath();
    ctx.arc(x, y, Math.max(6, canvas.width / 30), 0, 2 * Math.PI);
    ctx.fill();
    painted = true;
  };
  canvas.addEventListener("pointerdown", (e) => { down = true; canvas.setPointerCapture(e.pointerId); paint(e); });
  canvas.addEventListener("pointermove", paint);
  canvas.addEventListener("pointerup", () => { down = false; });
})();

function maskBlob() {
  // the painted area as a black-and-white PNG the size of the photo
  const src = $("brush-canvas");
  const out = document.createElement("canvas");
  out.width = src.width;
  out.height = src.height;
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, out.width, out.height);
  const data = src.getContext("2d").getImageData(0, 0, src.width, src.height);
  const mask = ctx.getImageData(0, 0, out.width, out.height);
  for (let i = 3; i < data.data.length; i += 4) {
    if (data.data[i] > 0) { mask.data[i - 3] = mask.data[i - 2] = mask.data[i - 1] = 255; }
  }
  ctx.putImageData(mask, 0, 0);
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
}

// -- stylize ------------------------------------------------------------------
$("strength").addEventListener("input", () => { $("strength-value").value = Number($("strength").value).toFixed(2); });
$("refine").addEventListener("input", () => { $("refine-value").value = $("refine").value; });

function ready() {
  $("go").disabled = !(state.photo && (state.styleId || state.styleFile));
  $("go-video").disabled = !($("video").files.length && (state.styleId || state.styleFile));
}

function addStyle(form) {
  if (state.styleFile) form.append("style", state.styleFile);
  else form.append("style_id", state.styleId);
}

function say(id, text, isError = false) {
  $(id).textContent = text;
  $(id).classList.toggle("error", isError);
}

function regionFields(form) {
  // label maps (both or neither) or automatic regions (0 = off, 2..8) -> form fields; or a problem to show
  const photoMap = $("content-labels").files[0], paintingMap = $("style-labels").files[0];
  const autoRegions = Number($("auto-regions").value || 0);
  if (Boolean(photoMap) !== Boolean(paintingMap)) {
    return { problem: "Give both label maps (the photo's and the painting's), or neither." };
  }
  if (!Number.isInteger(autoRegions) || autoRegions < 0 || autoRegions === 1 || autoRegions > 8) {
    return { problem: "Automatic regions: 0 (off) or a whole number from 2 to 8." };
  }
  if (photoMap) {
    form.append("content_labels", photoMap);
    form.append("style_labels", paintingMap);
  }
  if (autoRegions) form.append("auto_regions", String(autoRegions));
  return { labels: Boolean(photoMap), autoRegions };
}

$("go").addEventListener("click", async () => {
  const form = new FormData();
  form.append("content", state.photo);
  addStyle(form);
  form.append("strength", $("strength").value);
  form.append("preserve_color", $("preserve").checked ? "true" : "false");
  form.append("size", $("size").value);
  const mode = brushMode();
  const regions = regionFields(form);
  if (regions.problem) { say("status", regions.problem, true); return; }
  const refine = Number($("refine").value);
  if (refine) form.append("refine", String(refine));
  const styleFit = $("style-fit").checked ? STYLE_FIT_STEPS : 0;
  if (styleFit) form.append("style_fit", String(styleFit));
  state.lastRequest = { mask: painted && mode === "mask", protect: painted && mode === "protect",
                        labels: regions.labels, autoRegions: regions.autoRegions, refine, styleFit };
  if (painted && mode !== "off") form.append(mode, await maskBlob(), "mask.png");
  $("go").disabled = true;
  say("status", "Stylizing…");
  const started = performance.now();
  try {
    const blob = refine ? await stylizeAsJob(form) : await stylizeAtOnce(form);
    if (state.result) URL.revokeObjectURL(state.result);
    state.result = URL.createObjectURL(blob);
    $("after").src = state.result;
    $("download").href = state.result;
    $("download").hidden = false;
    $("compare").hidden = false;
    $("canvas-box").hidden = true;
    say("status", `Done in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
  } catch (err) {
    say("status", String(err.message || err), true);
  } finally {
    $("progress-row").hidden = true;
    ready();
  }
});

async function replyError(reply) {
  try { return new Error((await reply.json()).error || reply.statusText); } catch { return new Error(reply.statusText); }
}

async function stylizeAtOnce(form) {
  const reply = await fetch("/v1/stylize", { method: "POST", body: form });
  if (!reply.ok) throw await replyError(reply);
  return reply.blob();
}

async function stylizeAsJob(form) {
  // long work (refine): a job on the server; its progress counts refinement's steps
  const reply = await fetch("/v1/stylize/jobs", { method: "POST", body: form });
  if (!reply.ok) throw await replyError(reply);
  let job = await reply.json();
  const bar = $("progress");
  bar.value = 0;
  $("progress-row").hidden = false;
  $("status").scrollIntoView({ block: "nearest" });
  $("cancel").onclick = () => fetch(`/v1/jobs/${job.id}`, { method: "DELETE" });
  state.progressSeen = [];
  while (job.status === "queued" || job.status === "running") {
    await new Promise((r) => setTimeout(r, 250));
    const polled = await fetch(`/v1/jobs/${job.id}`);
    if (!polled.ok) throw await replyError(polled);
    job = await polled.json();
    bar.value = job.progress;
    state.progressSeen.push(job.progress);
    if (job.status === "queued") say("status", "Waiting for a free worker…");
    else if (job.status === "running") {
      say("status", job.steps_total ? `Refining: step ${job.steps_done} of ${job.steps_total}`
                                    : "Stylizing, then refining…");
    }
  }
  if (job.status !== "done") throw new Error(job.status === "cancelled" ? "Cancelled." : job.error || job.status);
  const result = await fetch(job.result);
  if (!result.ok) throw await replyError(result);
  const blob = await result.blob();
  fetch(`/v1/jobs/${job.id}`, { method: "DELETE" });  // the server need not keep it: the page has it
  return blob;
}

$("split").addEventListener("input", () => {
  $("after-clip").style.clipPath = `inset(0 0 0 ${$("split").value}%)`;
});

// -- video --------------------------------------------------------------------
$("video").addEventListener("change", ready);
$("go-video").addEventListener("click", async () => {
  const form = new FormData();
  form.append("video", $("video").files[0]);
  addStyle(form);
  form.append("strength", $("strength").value);
  $("go-video").disabled = true;
  $("video-progress").hidden = false;
  say("video-status", "Uploading…");
  try {
    let job = await (await fetch("/v1/videos", { method: "POST", body: form })).json();
    if (job.error) throw new Error(job.error);
    while (job.status === "queued" || job.status === "running") {
      await new Promise((r) => setTimeout(r, 500));
      job = await (await fetch(`/v1/jobs/${job.id}`)).json();
      $("video-progress").value = job.progress;
      say("video-status", `${job.status}: ${job.frames_done} of ${job.frames_total || "?"} frames`);
    }
    if (job.status !== "done") throw new Error(job.error || job.status);
    $("video-result").src = job.result;
    $("video-result").hidden = false;
    say("video-status", "Done.");
  } catch (err) {
    say("video-status", String(err.message || err), true);
  } finally {
    ready();
  }
});

// -- live: camera frames over a WebSocket, stylized frames back ----------------
const live = { socket: null, stream: null, inFlight: false, shown: [], timer: null, canvas: null, frames: 0 };
state.live = live;

$("live-toggle").addEventListener("click", () => (live.socket ? stopLive("Stopped.") : startLive()));

async function startLive() {
  if (!state.styleId) {
    say("live-status", "Live uses a painting from the gallery: pick one on the Photo tab.", true);
    return;
  }
  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) {
    say("live-status", "This browser gives this page no camera (it needs https, or this machine).", true);
    return;
  }
  say("live-status", "Asking for the camera…");
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
  } catch (err) {
    say("live-status", `No camera: ${err.message || err.name}`, true);
    return;
  }
  $("live-camera").srcObject = live.stream;
  $("live-stage").hidden = false;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/live`);
  socket.binaryType = "blob";
  live.socket = socket;
  live.inFlight = false;
  live.shown = [];
  live.frames = 0;
  $("live-toggle").textContent = "Stop";
  socket.onopen = () => socket.send(JSON.stringify({
    style_id: state.styleId, strength: Number($("strength").value), size: Number($("live-size").value),
    preserve_color: $("preserve").checked,
  }));
  socket.onmessage = (event) => {
    if (typeof event.data === "string") {
      const message = JSON.parse(event.data);
      if (message.error) stopLive(message.error, true);
      else if (message.ready) { say("live-status", "Live."); sendFrame(); }
      return;
    }
    const img = $("live-output");
    const previous = img.src;
    img.src = URL.createObjectURL(event.data);
    img.hidden = false;
    if (previous.startsWith("blob:")) URL.revokeObjectURL(previous);
    live.frames += 1;
    live.shown.push(performance.now());
    live.inFlight = false;
    sendFrame();
  };
  socket.onclose = (event) => {
    if (live.socket === socket) stopLive(event.code === 1000 ? "Stopped." : `Disconnected (${event.code}).`, true);
  };
  live.timer = setInterval(showFps, 500);
}

function sendFrame() {
  // the newest camera picture as a JPEG; at most one frame in flight
  const socket = live.socket, video = $("live-camera");
  if (!socket || socket.readyState !== WebSocket.OPEN || live.inFlight) return;
  if (!video.videoWidth) { setTimeout(sendFrame, 50); return; }
  const side = Number($("live-size").value);
  const scale = Math.min(1, side / Math.max(video.videoWidth, video.videoHeight));
  live.canvas = live.canvas || document.createElement("canvas");
  live.canvas.width = Math.round(video.videoWidth * scale);
  live.canvas.height = Math.round(video.videoHeight * scale);
  live.canvas.getContext("2d").drawImage(video, 0, 0, live.canvas.width, live.canvas.height);
  live.inFlight = true;
  live.canvas.toBlob((blob) => {
    if (blob && live.socket === socket && socket.readyState === WebSocket.OPEN) socket.send(blob);
    else live.inFlight = false;
  }, "image/jpeg", 0.85);
}

function showFps() {
  // frames shown over the last three seconds
  const now = performance.now();
  live.shown = live.shown.filter((t) => now - t < 3000);
  const span = live.shown.length > 1 ? (now - live.shown[0]) / 1000 : 0;
  $("live-fps").value = (span > 0 ? (live.shown.length - 1) / span : 0).toFixed(1);
}

function stopLive(message, isError = false) {
  const socket = live.socket;
  live.socket = null;
  if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  if (live.stream) for (const track of live.stream.getTracks()) track.stop();
  live.stream = null;
  $("live-camera").srcObject = null;
  clearInterval(live.timer);
  $("live-toggle").textContent = "Start the camera";
  say("live-status", message, isError);
}

loadGallery();
