// colorizer web app: plain JavaScript over the REST API (/v1/...). No build step, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const SCRIBBLE_SIDE = 2048; // longest side of the scribble canvas, in canvas pixels
const RERUN_DELAY_MS = 350; // hint and paint edits re-run after this pause

const state = {
  file: null,
  kind: null, // "image" or "video"
  inputUrl: null,
  natural: null, // {w, h} of the photo as the browser shows it (EXIF upright)
  hints: [], // {x, y, color} in image pixel coordinates; a keyframe's own list while it is edited
  selected: -1,
  scribbled: false,
  reference: null,
  photoReference: null, // the photo's reference, kept aside while a keyframe is edited
  resultUrl: null,
  resultBlob: null,
  request: null,
  runs: 0,
  timer: null,
  job: null,
  inspections: 0, // provenance checks started: a later result's check wins
  features: { hints: true, video: true },
  // A film's keyframes: {time (s), width, height, blob (grey PNG), url, hints, reference,
  // colored (the frame coloured from its reference), coloredFor (what it was coloured with)}.
  keyframes: [],
  editing: null, // the keyframe whose frame is in the editor, or null (the film is shown)
  filmReference: null, // a colour photo for every shot without a keyframe
  album: [], // {file, url, state: waiting|working|done|error, message, resultUrl}
  albumReference: null,
  albumRunning: false,
  apiKey: sessionStorage.getItem("colorizer-api-key") || "",
};

// --- talking to the server ------------------------------------------------------------------

function describeError(status, text) {
  try {
    const body = JSON.parse(text);
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail
        .map((e) => `${(e.loc || []).slice(-1)[0] || "request"}: ${e.msg}`)
        .join("; ");
    }
  } catch (_) {
    /* not JSON */
  }
  if (status === 0) return "the server cannot be reached; is `colorize app` still running?";
  return `the server answered ${status}`;
}

function request(method, url, body, { blob = false, onUpload = null } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open(method, url);
    if (state.apiKey) xhr.setRequestHeader("X-API-Key", state.apiKey);
    xhr.setRequestHeader("Accept", blob ? "image/png, video/mp4, */*;q=0.1" : "application/json");
    xhr.responseType = blob ? "blob" : "text";
    if (onUpload) xhr.upload.onprogress = (e) => e.lengthComputable && onUpload(e.loaded / e.total);
    xhr.onload = async () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(blob ? xhr.response : JSON.parse(xhr.responseText || "null"));
        return;
      }
      const text = blob ? await xhr.response.text() : xhr.responseText;
      if (xhr.status === 401) $("key-box").hidden = false;
      const error = new Error(describeError(xhr.status, text));
      error.status = xhr.status;
      reject(error);
    };
    xhr.onerror = () => reject(new Error(describeError(0, "")));
    xhr.onabort = () => reject(Object.assign(new Error("aborted"), { aborted: true }));
    xhr.send(body);
  });
  promise.xhr = xhr;
  return promise;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function setStatus(text, stateName) {
  $("status").textContent = text;
  if (stateName) $("result-stage").dataset.state = stateName;
}

function setProgress(fraction) {
  const bar = $("progress");
  bar.hidden = fraction === null;
  bar.classList.toggle("indeterminate", fraction === undefined);
  $("progress-bar").style.width = fraction ? `${Math.round(fraction * 100)}%` : "";
}

async function loadExamples() {
  try {
    const found = await request("GET", "/v1/examples");
    const list = $("example-list");
    list.innerHTML = "";
    for (const example of found.examples) {
      const button = document.createElement("button");
      button.textContent = example.name.replace(/\.[^.]*$/, "").replace(/[_-]+/g, " ");
      button.title = example.name;
      button.addEventListener("click", async () => {
        const blob = await request("GET", example.url, null, { blob: true });
        openFile(new File([blob], example.name, { type: blob.type || "image/jpeg" }));
      });
      list.appendChild(button);
    }
    $("examples").hidden = !found.examples.length;
  } catch (_) {
    $("examples").hidden = true; // an older server, or no key yet: nothing to offer
  }
}

async function loadModels() {
  try {
    const list = await request("GET", "/v1/models");
    const select = $("model");
    select.innerHTML = "";
    for (const m of list.models) {
      const option = new Option(m.available ? m.name : `${m.name} (not downloaded)`, m.name);
      option.disabled = !m.available;
      option.title = m.available ? m.description : `colorize models pull ${m.name}`;
      option.selected = m.default;
      select.add(option);
    }
    state.features = { hints: list.hints, video: list.video };
    for (const el of $("tools").querySelectorAll("input, button, label")) {
      if (!list.hints) el.setAttribute("disabled", "");
    }
    if (!list.hints) $("tools").title = "this installation has no colour hints";
    $("key-box").hidden = true;
  } catch (error) {
    showError(error.message);
  }
}

// --- opening a file --------------------------------------------------------------------------

function isVideo(file) {
  return file.type.startsWith("video/") || /\.(mp4|mkv|mov|avi|webm|m4v|mpe?g)$/i.test(file.name);
}

function openFile(file) {
  if (!file) return;
  showError("");
  cancelRun();
  state.file = file;
  state.kind = isVideo(file) ? "video" : "image";
  state.hints = [];
  state.selected = -1;
  state.scribbled = false;
  state.resultBlob = null;
  closePopover();
  clearKeyframes();
  if (state.inputUrl) URL.revokeObjectURL(state.inputUrl);
  state.inputUrl = URL.createObjectURL(file);
  $("input-stage").classList.remove("empty");
  $("input-info").textContent = `${file.name} (${(file.size / 1048576).toFixed(1)} MB)`;
  $("input-box").hidden = state.kind !== "image";
  $("input-video").hidden = state.kind !== "video";
  $("tools").hidden = state.kind !== "image";
  $("keyframe-tools").hidden = state.kind !== "video";
  $("consistency-box").hidden = state.kind !== "video";
  $("compare").hidden = true;
  $("video-compare").hidden = true;
  $("download").classList.add("disabled");
  hideProvenance();
  updateAlbumButtons();
  $("run").disabled = false;
  if (state.kind === "video") {
    $("input-video").src = state.inputUrl;
    runVideo();
    return;
  }
  const img = $("input-img");
  img.onload = () => {
    state.natural = { w: img.naturalWidth, h: img.naturalHeight };
    setupCanvas();
    renderMarkers();
    run();
  };
  img.onerror = () => {
    // TIFF and other formats browsers cannot show: colorize anyway, without hints.
    state.natural = null;
    $("input-box").hidden = true;
    $("input-info").textContent += " - the browser cannot display it; hints are off";
    run();
  };
  img.src = state.inputUrl;
}

function setupCanvas() {
  const canvas = $("scribble-canvas");
  const { w, h } = state.natural;
  const scale = Math.min(1, SCRIBBLE_SIDE / Math.max(w, h));
  canvas.width = Math.max(1, Math.round(w * scale));
  canvas.height = Math.max(1, Math.round(h * scale));
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
}

// --- colorizing --------------------------------------------------------------------------------

function cancelRun() {
  clearTimeout(state.timer);
  if (state.request) state.request.xhr.abort();
  // A film job no one follows any more would hold the server's queue: cancel it there too.
  if (state.job) request("DELETE", `/v1/jobs/${state.job}`).catch(() => {});
  state.request = null;
  state.job = null;
}

function scheduleRun() {
  clearTimeout(state.timer);
  if (state.editing) return; // a keyframe shows its edits on Preview; the film is not re-run
  state.timer = setTimeout(() => (state.kind === "video" ? runVideo() : run()), RERUN_DELAY_MS);
}

function commonFields(form) {
  if ($("model").value) form.append("model", $("model").value);
  if ($("size").value) form.append("size", $("size").value);
}

function scribbleBlob() {
  return new Promise((resolve) => $("scribble-canvas").toBlob(resolve, "image/png"));
}

function hintsField(hints) {
  return JSON.stringify(hints.map((h) => ({ x: h.x, y: h.y, color: h.color })));
}

async function run() {
  if (!state.file || state.kind !== "image") return;
  cancelRun();
  showError("");
  const form = new FormData();
  form.append("image", state.file, "image");
  commonFields(form);
  if (state.hints.length) form.append("hints", hintsField(state.hints));
  if (state.scribbled) form.append("scribbles", await scribbleBlob(), "scribbles.png");
  if (state.reference) form.append("reference", state.reference, "reference");
  const done = await colorizePhoto(form);
  if (!done) return;
  showResult(done.blob, done.seconds, state.inputUrl, `${stem(state.file.name)}_colorized.png`);
}

// POST /v1/colorize with progress in the result panel: {blob, seconds}, or null when it failed
// (the message is shown) or was cancelled by a newer run.
async function colorizePhoto(form) {
  cancelRun();
  showError("");
  const started = performance.now();
  setStatus("uploading...", "working");
  setProgress(0);
  const tick = setInterval(() => {
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    if ($("progress").classList.contains("indeterminate")) {
      setStatus(`colorizing... ${seconds} s`);
    }
  }, 500);
  const pending = request("POST", "/v1/colorize", form, {
    blob: true,
    onUpload: (f) => {
      setProgress(f < 1 ? f : undefined);
      if (f >= 1) setStatus("colorizing...");
    },
  });
  state.request = pending;
  try {
    const blob = await pending;
    return { blob, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    if (!error.aborted) {
      showError(error.message);
      setStatus("failed", "error");
    }
    return null;
  } finally {
    clearInterval(tick);
    if (state.request === pending) {
      state.request = null;
      setProgress(null);
    }
  }
}

function showResult(blob, seconds, beforeUrl, name) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  state.resultBlob = blob;
  $("result-img").src = state.resultUrl;
  $("before-img").src = beforeUrl;
  $("compare").hidden = false;
  $("video-compare").hidden = true;
  setSlider("slider", "before", "handle", 50); // a re-run shows its change, not the old split
  $("result-stage").classList.remove("empty");
  const link = $("download");
  link.href = state.resultUrl;
  link.download = name;
  link.classList.remove("disabled");
  state.runs += 1;
  $("result-stage").dataset.runs = String(state.runs);
  setStatus(`done in ${seconds.toFixed(1)} s`, "done");
  showProvenance(blob, link.download);
  updateAlbumButtons();
}

function setSlider(sliderId, beforeId, handleId, value) {
  $(sliderId).value = String(value);
  $(beforeId).style.clipPath = `inset(0 ${100 - value}% 0 0)`;
  $(handleId).style.left = `${value}%`;
}

function stem(name) {
  const base = name.replace(/\.[^.]*$/, "") || "image";
  return base.replace(/[^\w.-]+/g, "_");
}

async function runVideo() {
  if (!state.file || state.kind !== "video") return;
  cancelRun();
  showError("");
  const film = state.file;
  const form = new FormData();
  form.append("video", film, "video");
  commonFields(form);
  form.append("consistency", $("consistency").value);
  try {
    await addKeyframeFields(form);
    if (state.file !== film) return; // another file was opened meanwhile
    setStatus("uploading...", "working");
    setProgress(0);
    const pending = request("POST", "/v1/colorize/video", form, {
      onUpload: (f) => setProgress(f < 1 ? f : undefined),
    });
    state.request = pending;
    const job = await pending;
    state.request = null;
    state.job = job.id;
    await followJob(job.id);
  } catch (error) {
    if (!error.aborted) {
      state.job = null;
      showError(error.message);
      setStatus("failed", "error");
      setProgress(null);
    }
  }
}

// The film's keyframes as the fields of POST /v1/colorize/video: a `keyframes` manifest whose
// hint keyframes carry their hints (the server colours that frame with them), while a keyframe
// with a reference photo goes as its frame coloured from it (a `keyframe_images` file, the
// film's size); and the `reference` for every shot without a keyframe.
async function addKeyframeFields(form) {
  const entries = [];
  const used = state.keyframes.filter((k) => k.reference || k.hints.length);
  for (const [index, keyframe] of used.entries()) {
    if (keyframe.reference) {
      setStatus(`colouring keyframe ${index + 1} of ${used.length} from its reference...`);
      const name = `keyframe-${index + 1}.png`;
      form.append("keyframe_images", await coloredFrame(keyframe), name);
      entries.push({ time: keyframe.time, image: name });
    } else {
      entries.push({ time: keyframe.time, hints: JSON.parse(hintsField(keyframe.hints)) });
    }
  }
  if (entries.length) form.append("keyframes", JSON.stringify({ keyframes: entries }));
  if (state.filmReference) form.append("reference", state.filmReference, "reference");
}

async function coloredFrame(keyframe) {
  if (keyframe.colored && sameColoring(keyframe.coloredFor, coloringOf(keyframe))) {
    return keyframe.colored;
  }
  const pending = request("POST", "/v1/colorize", keyframeForm(keyframe), { blob: true });
  state.request = pending;
  const blob = await pending;
  state.request = null;
  keyframe.colored = blob;
  keyframe.coloredFor = coloringOf(keyframe);
  return blob;
}

// What a keyframe's coloured frame depends on: a change to any of these colours it again.
function coloringOf(keyframe) {
  const hints = hintsField(keyframe.hints);
  const text = JSON.stringify({ hints, model: $("model").value, size: $("size").value });
  return { text, reference: keyframe.reference };
}

function sameColoring(a, b) {
  return Boolean(a && b && a.text === b.text && a.reference === b.reference);
}

async function followJob(id) {
  for (;;) {
    if (state.job !== id) return;
    const job = await request("GET", `/v1/jobs/${id}`);
    if (state.job !== id) return; // cancelled while the request was under way
    if (job.status === "queued") {
      const ahead = job.position ? `, ${job.position} ahead` : ", next";
      setStatus(`waiting in the queue${job.position === null ? "" : ahead}...`);
      setProgress(undefined);
    } else if (job.status === "running") {
      const total = job.total ? ` of ${job.total}` : "";
      const eta = job.eta_s == null ? "" : `, ${formatEta(job.eta_s)} left`;
      setStatus(`colorizing frame ${job.done}${total}${eta}...`);
      setProgress(job.fraction ?? undefined);
    } else if (job.status === "done") {
      setStatus("downloading the result...");
      const pending = request("GET", job.result_url, null, { blob: true });
      state.request = pending;
      state.job = null; // done: nothing left to cancel on the server
      const blob = await pending;
      state.request = null;
      showVideo(blob);
      return;
    } else {
      throw new Error(job.error || `the job was ${job.status}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function formatEta(seconds) {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function syncBefore() {
  // The grey input plays under the colour result, frame for frame.
  const result = $("result-video");
  const before = $("before-video");
  if (Math.abs(before.currentTime - result.currentTime) > 0.05) {
    before.currentTime = result.currentTime;
  }
  if (result.paused === before.paused) return;
  if (result.paused) before.pause();
  else before.play().catch(() => {});
}

function showVideo(blob) {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  const video = $("result-video");
  video.src = state.resultUrl;
  $("before-video").src = state.inputUrl;
  $("video-compare").hidden = false;
  $("compare").hidden = true;
  setSlider("video-slider", "before-video-box", "video-handle", 50);
  $("result-stage").classList.remove("empty");
  const link = $("download");
  link.href = state.resultUrl;
  link.download = `${stem(state.file.name)}_colorized.mp4`;
  link.classList.remove("disabled");
  state.runs += 1;
  $("result-stage").dataset.runs = String(state.runs);
  setProgress(null);
  setStatus("done", "done");
  showProvenance(blob, link.download);
}

// --- provenance of the result ---------------------------------------------------------------

// IPTC digital source types (http://cv.iptc.org/newscodes/digitalsourcetype/...) in words.
const SOURCE_TYPES = {
  compositeWithTrainedAlgorithmicMedia: "edited using generative AI (colour from a trained model)",
  trainedAlgorithmicMedia: "made by generative AI",
  algorithmicallyEnhanced: "algorithmically enhanced",
  digitalCapture: "digital capture",
  negativeFilm: "scan of a negative",
  print: "scan of a print",
};

const VERDICTS = {
  intact: "intact (provenance recorded, the file unchanged since)",
  "no provenance": "no provenance recorded",
  tampered: "TAMPERED: the file changed after its provenance was recorded",
};

function hideProvenance() {
  state.inspections += 1; // a check still under way is for an older result
  $("provenance").hidden = true;
  $("provenance").dataset.verdict = "none";
}

async function showProvenance(blob, name) {
  // What the result says about its making: the file itself, sent back to POST /v1/inspect.
  const ticket = ++state.inspections;
  const panel = $("provenance");
  panel.hidden = false;
  panel.dataset.verdict = "checking";
  $("provenance-verdict").textContent = "checking...";
  $("provenance-facts").replaceChildren();
  const form = new FormData();
  form.append("file", blob, name);
  try {
    const found = await request("POST", "/v1/inspect", form);
    if (ticket === state.inspections) renderProvenance(found);
  } catch (error) {
    if (ticket !== state.inspections) return;
    panel.dataset.verdict = "unknown";
    $("provenance-verdict").textContent = `not checked: ${error.message}`;
  }
}

function renderProvenance(found) {
  const x = found.xmp || {};
  $("provenance").dataset.verdict = found.verdict;
  $("provenance-verdict").textContent = VERDICTS[found.verdict] || found.meaning;
  const facts = [];
  if (x.digital_source_type) {
    const code = x.digital_source_type.split("/").pop();
    facts.push(["Source type", SOURCE_TYPES[code] || code, x.digital_source_type]);
  }
  if (x.tool) facts.push(["Made by", `${x.tool} ${x.version || ""}`.trim()]);
  if (x.model) facts.push(["Model", x.model]);
  if (x.weights_sha256) {
    facts.push(["Weights SHA-256", `${x.weights_sha256.slice(0, 12)}...`, x.weights_sha256]);
  }
  const c2pa = found.c2pa;
  if (c2pa) {
    const by = c2pa.signer ? `, signed by ${c2pa.signer}` : "";
    const trust = c2pa.untrusted ? " (signer not in a trust list)" : "";
    facts.push(["Signed", `yes: C2PA ${c2pa.state}${by}${trust}`]);
  } else {
    facts.push(["Signed", found.c2pa_note || "no: the file holds no C2PA manifest"]);
  }
  const pixels = {
    match: "intact: they match the recorded SHA-256",
    differ: "CHANGED: they differ from the recorded SHA-256",
    "not recorded": "no SHA-256 recorded (JPEG and films)",
    unreadable: "cannot be decoded to check them",
  };
  facts.push(["Pixels", pixels[found.pixels] || found.pixels]);
  const list = $("provenance-facts");
  list.replaceChildren();
  for (const [term, value, title] of facts) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (title) dd.title = title;
    list.append(dt, dd);
  }
}

// --- hints and scribbles --------------------------------------------------------------------

function tool() {
  return document.querySelector('input[name="tool"]:checked').value;
}

function imagePoint(event) {
  const rect = $("scribble-canvas").getBoundingClientRect();
  const fx = (event.clientX - rect.left) / rect.width;
  const fy = (event.clientY - rect.top) / rect.height;
  return {
    x: Math.max(0, Math.min(state.natural.w - 1, fx * state.natural.w)),
    y: Math.max(0, Math.min(state.natural.h - 1, fy * state.natural.h)),
    fx,
    fy,
  };
}

function renderMarkers() {
  const box = $("markers");
  box.innerHTML = "";
  state.hints.forEach((hint, index) => {
    const dot = document.createElement("div");
    dot.className = index === state.selected ? "marker selected" : "marker";
    dot.style.left = `${(100 * hint.x) / state.natural.w}%`;
    dot.style.top = `${(100 * hint.y) / state.natural.h}%`;
    dot.style.background = hint.color;
    dot.title = `hint ${index + 1}: ${hint.color}`;
    dot.addEventListener("click", (e) => {
      e.stopPropagation();
      openPopover(index, e.pageX, e.pageY);
    });
    box.appendChild(dot);
  });
  const n = state.hints.length;
  $("hint-count").textContent = n ? `${n} hint${n > 1 ? "s" : ""}` : "";
  if (state.editing) renderKeyframes();
}

function addHint(event) {
  const p = imagePoint(event);
  state.hints.push({ x: Math.round(p.x), y: Math.round(p.y), color: $("brush-color").value });
  const index = state.hints.length - 1;
  renderMarkers();
  openPopover(index, event.pageX, event.pageY);
  scheduleRun();
}

function openPopover(index, pageX, pageY) {
  state.selected = index;
  renderMarkers();
  const pop = $("hint-popover");
  const hint = state.hints[index];
  $("hint-color").value = hint.color;
  pop.style.left = `${pageX + 12}px`;
  pop.style.top = `${pageY + 12}px`;
  pop.hidden = false;
  loadSuggestions(index);
}

function closePopover() {
  $("hint-popover").hidden = true;
  state.selected = -1;
  if (state.natural) renderMarkers();
}

async function loadSuggestions(index) {
  const box = $("swatches");
  box.innerHTML = "<em>loading...</em>";
  const hint = state.hints[index];
  const form = new FormData();
  form.append("image", state.editing ? state.editing.blob : state.file, "image");
  form.append("x", String(hint.x));
  form.append("y", String(hint.y));
  commonFields(form);
  try {
    const found = await request("POST", "/v1/suggest", form);
    if (state.selected !== index) return;
    box.innerHTML = "";
    for (const s of found.suggestions) {
      const item = document.createElement("span");
      item.className = "swatch-box";
      const swatch = document.createElement("button");
      swatch.className = "swatch";
      swatch.style.background = s.hex;
      swatch.title = `${s.hex} (${Math.round(100 * s.probability)}%)`;
      swatch.dataset.hex = s.hex;
      swatch.addEventListener("click", () => setHintColor(s.hex));
      const share = document.createElement("span");
      share.textContent = `${Math.round(100 * s.probability)}%`;
      item.append(swatch, share);
      box.appendChild(item);
    }
    if (!found.suggestions.length) box.textContent = "none";
  } catch (error) {
    box.textContent = error.status === 501 ? "not offered by this model" : error.message;
  }
}

function setHintColor(hex) {
  if (state.selected < 0) return;
  state.hints[state.selected].color = hex;
  $("hint-color").value = hex;
  $("brush-color").value = hex;
  renderMarkers();
  scheduleRun();
}

let painting = null;

function paintStart(event) {
  const canvas = $("scribble-canvas");
  canvas.setPointerCapture(event.pointerId);
  painting = imagePoint(event);
  paintTo(event);
}

function paintTo(event) {
  if (!painting) return;
  const canvas = $("scribble-canvas");
  const ctx = canvas.getContext("2d");
  const p = imagePoint(event);
  const rect = canvas.getBoundingClientRect();
  ctx.strokeStyle = $("brush-color").value;
  ctx.lineWidth = (Number($("brush-size").value) * canvas.width) / rect.width;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(painting.fx * canvas.width, painting.fy * canvas.height);
  ctx.lineTo(p.fx * canvas.width, p.fy * canvas.height);
  ctx.stroke();
  painting = p;
}

function paintEnd() {
  if (!painting) return;
  painting = null;
  state.scribbled = true;
  scheduleRun();
}

// --- keyframes of a film ----------------------------------------------------------------------

function clearKeyframes() {
  for (const keyframe of state.keyframes) URL.revokeObjectURL(keyframe.url);
  state.keyframes = [];
  state.filmReference = null;
  if (state.editing) state.reference = state.photoReference;
  state.editing = null;
  $("film-reference").value = "";
  showFilmReference();
  showEditor(false);
}

// The frame the film shows now, as a grey PNG of the film's own size (its hints are in the
// film's pixel coordinates): a keyframe to colour by hints or from a reference photo.
async function grabFrame() {
  const video = $("input-video");
  if (video.readyState < 2 || video.seeking || !video.videoWidth) {
    showError("this frame of the film is not loaded yet (or the browser cannot show this film)");
    return;
  }
  video.pause();
  // At the end of a film the browser shows its last frame at currentTime = duration, a time
  // the server counts as past the end: a millisecond earlier is that same last frame.
  const time = Math.min(video.currentTime, Math.max(0, video.duration - 0.001));
  const same = state.keyframes.find((k) => Math.abs(k.time - time) < 0.001);
  if (same) {
    editKeyframe(same);
    return;
  }
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
  greyInPlace(ctx, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  const keyframe = { time, width: canvas.width, height: canvas.height, blob, hints: [] };
  keyframe.url = URL.createObjectURL(blob);
  keyframe.reference = null;
  state.keyframes.push(keyframe);
  state.keyframes.sort((a, b) => a.time - b.time);
  editKeyframe(keyframe);
}

function greyInPlace(ctx, width, height) {
  // The server colours the lightness alone; a grey frame shows the user what it sees.
  const pixels = ctx.getImageData(0, 0, width, height);
  const data = pixels.data;
  for (let i = 0; i < data.length; i += 4) {
    const grey = Math.round(0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]);
    data[i] = grey;
    data[i + 1] = grey;
    data[i + 2] = grey;
  }
  ctx.putImageData(pixels, 0, 0);
}

function editKeyframe(keyframe) {
  closePopover();
  if (!state.editing) state.photoReference = state.reference;
  state.editing = keyframe;
  state.hints = keyframe.hints; // the editor's hint code edits the keyframe's own list
  state.reference = keyframe.reference;
  state.natural = { w: keyframe.width, h: keyframe.height };
  const img = $("input-img");
  img.onload = null;
  img.onerror = null;
  img.src = keyframe.url;
  setupCanvas();
  renderMarkers();
  showReference();
  showEditor(true);
  $("input-info").textContent = `${state.file.name}: keyframe at ${keyframe.time.toFixed(2)} s`;
}

function backToFilm() {
  closePopover();
  state.editing = null;
  state.hints = [];
  state.reference = state.photoReference;
  showReference();
  showEditor(false);
  if (state.file) $("input-info").textContent = state.file.name;
}

// The input panel shows the film (scrub it, grab a frame) or the keyframe being edited.
function showEditor(editing) {
  const film = state.kind === "video";
  $("input-box").hidden = film ? !editing : state.kind !== "image";
  $("input-video").hidden = !film || editing;
  $("tools").hidden = film ? !editing : state.kind !== "image";
  $("paint-tool").hidden = editing; // keyframes take point hints; scribbles are for photos
  $("clear-scribbles").hidden = editing;
  $("reference-label").textContent = `Reference photo${editing ? " for this keyframe" : ""}`;
  if (editing) document.querySelector('input[name="tool"][value="hint"]').checked = true;
  $("grab-frame").hidden = editing;
  $("preview-keyframe").hidden = !editing;
  $("back-to-film").hidden = !editing;
  renderKeyframes();
}

function removeKeyframe(keyframe) {
  if (state.editing === keyframe) backToFilm();
  state.keyframes = state.keyframes.filter((k) => k !== keyframe);
  URL.revokeObjectURL(keyframe.url);
  renderKeyframes();
}

function describeKeyframe(keyframe) {
  const parts = [];
  const n = keyframe.hints.length;
  if (n) parts.push(`${n} hint${n > 1 ? "s" : ""}`);
  if (keyframe.reference) parts.push(`colours from ${keyframe.reference.name || "a reference"}`);
  return parts.length ? parts.join(", ") : "not used yet: click hints or load a reference photo";
}

function renderKeyframes() {
  const list = $("keyframe-list");
  list.replaceChildren();
  for (const keyframe of state.keyframes) {
    const when = `${keyframe.time.toFixed(2)} s`;
    const item = document.createElement("li");
    item.className = keyframe === state.editing ? "keyframe editing" : "keyframe";
    const open = document.createElement("button");
    open.textContent = when;
    open.setAttribute("aria-label", `edit the keyframe at ${when}`);
    open.addEventListener("click", () => editKeyframe(keyframe));
    const what = document.createElement("span");
    what.textContent = describeKeyframe(keyframe);
    const remove = document.createElement("button");
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `remove the keyframe at ${when}`);
    remove.addEventListener("click", () => removeKeyframe(keyframe));
    item.append(open, what, remove);
    list.append(item);
  }
}

function keyframeForm(keyframe) {
  const form = new FormData();
  form.append("image", keyframe.blob, "frame.png");
  commonFields(form);
  if (keyframe.hints.length) form.append("hints", hintsField(keyframe.hints));
  if (keyframe.reference) form.append("reference", keyframe.reference, "reference");
  return form;
}

// The keyframe being edited, coloured as the film run will colour it (POST /v1/colorize).
async function previewKeyframe() {
  const keyframe = state.editing;
  if (!keyframe) return;
  const done = await colorizePhoto(keyframeForm(keyframe));
  if (!done) return;
  if (keyframe.reference) {
    keyframe.colored = done.blob;
    keyframe.coloredFor = coloringOf(keyframe);
  }
  const name = `${stem(state.file.name)}_${keyframe.time.toFixed(2)}s.png`;
  showResult(done.blob, done.seconds, keyframe.url, name);
}

function showReference() {
  const reference = state.reference;
  $("reference-name").textContent = reference ? reference.name : "";
  $("clear-reference").hidden = !reference;
  if (!reference) $("reference").value = "";
}

function setReference(file) {
  state.reference = file;
  if (state.editing) {
    state.editing.reference = file;
    renderKeyframes();
  }
  showReference();
  scheduleRun();
}

function showFilmReference() {
  const reference = state.filmReference;
  $("film-reference-name").textContent = reference ? reference.name : "";
  $("clear-film-reference").hidden = !reference;
}

// --- albums: several photos coloured from one reference ---------------------------------------

function openAlbum(files) {
  const photos = [...files].filter((file) => !isVideo(file));
  if (!photos.length) return;
  closeAlbum();
  state.album = photos.map((file) => ({
    file,
    url: URL.createObjectURL(file),
    state: "waiting",
    message: "waiting",
    resultUrl: null,
  }));
  $("album").hidden = false;
  $("album-count").textContent = `${photos.length} photo${photos.length > 1 ? "s" : ""}`;
  renderAlbum();
  updateAlbumButtons();
}

function closeAlbum() {
  for (const item of state.album) {
    URL.revokeObjectURL(item.url);
    if (item.resultUrl) URL.revokeObjectURL(item.resultUrl);
  }
  state.album = [];
  $("album").hidden = true;
  $("album-grid").replaceChildren();
  updateAlbumButtons();
}

function setAlbumReference(file) {
  state.albumReference = file;
  $("album-reference-name").textContent = file ? file.name : "";
  $("clear-album-reference").hidden = !file;
  if (!file) $("album-reference").value = "";
}

function updateAlbumButtons() {
  $("album-run").disabled = !state.album.length || state.albumRunning;
  $("album-use-result").disabled = !(state.kind === "image" && state.resultBlob);
}

function renderAlbum() {
  const grid = $("album-grid");
  grid.replaceChildren();
  for (const item of state.album) grid.append(albumItem(item));
  const done = state.album.filter((item) => item.state === "done").length;
  $("album").dataset.done = String(done);
}

function albumItem(item) {
  const name = item.file.name;
  const box = document.createElement("li");
  box.className = "album-item";
  box.dataset.state = item.state;
  const img = document.createElement("img");
  img.src = item.resultUrl || item.url;
  img.alt = item.resultUrl ? `${name}, coloured` : name;
  const caption = document.createElement("span");
  caption.className = "album-name";
  caption.textContent = name;
  const status = document.createElement("span");
  status.className = "album-status";
  status.textContent = item.message;
  const open = document.createElement("button");
  open.textContent = "Open";
  open.setAttribute("aria-label", `open ${name} in the editor`);
  open.addEventListener("click", () => openFile(item.file));
  const actions = document.createElement("span");
  actions.className = "album-actions";
  actions.append(open);
  box.append(img, caption, status, actions);
  if (item.resultUrl) {
    const link = document.createElement("a");
    link.className = "button";
    link.textContent = "Download";
    link.href = item.resultUrl;
    link.download = `${stem(name)}_colorized.png`;
    link.setAttribute("aria-label", `download ${name} coloured`);
    actions.append(link);
  }
  return box;
}

// Each photo in turn (the server colours a few at once; an album need not fill its queue).
async function runAlbum() {
  if (state.albumRunning || !state.album.length) return;
  state.albumRunning = true;
  updateAlbumButtons();
  $("album").dataset.state = "working";
  const reference = state.albumReference;
  for (const item of state.album) Object.assign(item, { state: "waiting", message: "waiting" });
  renderAlbum();
  try {
    for (const item of state.album) {
      item.state = "working";
      item.message = "colorizing...";
      renderAlbum();
      await colorizeAlbumPhoto(item, reference);
      renderAlbum();
    }
  } finally {
    state.albumRunning = false;
    $("album").dataset.state = "done";
    updateAlbumButtons();
  }
}

// The server says how much of a photo matched the reference (models with an encoder), as the
// command line's album report does: "matched the reference" or "fell back".
function referenceVerdict(xhr) {
  const verdict = xhr.getResponseHeader("X-Reference-Match");
  const share = Number(xhr.getResponseHeader("X-Reference-Match-Share"));
  if (!verdict) return "coloured with the reference";
  return `${verdict} (${Math.round(share * 100)}% of the photo matched)`;
}

async function colorizeAlbumPhoto(item, reference) {
  const form = new FormData();
  form.append("image", item.file, "image");
  commonFields(form);
  if (reference) form.append("reference", reference, "reference");
  try {
    const pending = request("POST", "/v1/colorize", form, { blob: true });
    const blob = await pending;
    if (item.resultUrl) URL.revokeObjectURL(item.resultUrl);
    item.resultUrl = URL.createObjectURL(blob);
    item.state = "done";
    item.message = reference ? referenceVerdict(pending.xhr) : "coloured automatically";
  } catch (error) {
    item.state = "error";
    item.message = error.message;
  }
}

// --- wiring ----------------------------------------------------------------------------------

function wire() {
  $("file").addEventListener("change", (e) => openFile(e.target.files[0]));
  $("run").addEventListener("click", () => (state.kind === "video" ? runVideo() : run()));
  $("model").addEventListener("change", scheduleRun);
  $("size").addEventListener("change", scheduleRun);
  $("consistency").addEventListener("input", (e) => {
    $("consistency-value").textContent = Number(e.target.value).toFixed(2);
  });
  $("slider").addEventListener("input", (e) => {
    setSlider("slider", "before", "handle", Number(e.target.value));
  });
  $("video-slider").addEventListener("input", (e) => {
    setSlider("video-slider", "before-video-box", "video-handle", Number(e.target.value));
  });
  for (const event of ["play", "pause", "seeked", "timeupdate"]) {
    $("result-video").addEventListener(event, syncBefore);
  }

  const canvas = $("scribble-canvas");
  canvas.addEventListener("pointerdown", (e) => {
    if (!state.natural || !state.features.hints) return;
    if (tool() === "hint") addHint(e);
    else if (!state.editing) paintStart(e);
  });
  canvas.addEventListener("pointermove", paintTo);
  canvas.addEventListener("pointerup", paintEnd);
  canvas.addEventListener("pointercancel", paintEnd);

  $("hint-color").addEventListener("change", (e) => setHintColor(e.target.value));
  $("hint-remove").addEventListener("click", () => {
    if (state.selected >= 0) state.hints.splice(state.selected, 1);
    closePopover();
    scheduleRun();
  });
  $("hint-close").addEventListener("click", closePopover);
  $("clear-hints").addEventListener("click", () => {
    state.hints.splice(0); // in place: while a keyframe is edited, this is its own list
    closePopover();
    scheduleRun();
  });
  $("clear-scribbles").addEventListener("click", () => {
    if (state.natural) setupCanvas();
    state.scribbled = false;
    scheduleRun();
  });
  $("reference").addEventListener("change", (e) => setReference(e.target.files[0] || null));
  $("clear-reference").addEventListener("click", () => setReference(null));

  $("grab-frame").addEventListener("click", grabFrame);
  $("preview-keyframe").addEventListener("click", previewKeyframe);
  $("back-to-film").addEventListener("click", backToFilm);
  $("colorize-film").addEventListener("click", runVideo);
  $("film-reference").addEventListener("change", (e) => {
    state.filmReference = e.target.files[0] || null;
    showFilmReference();
  });
  $("clear-film-reference").addEventListener("click", () => {
    state.filmReference = null;
    $("film-reference").value = "";
    showFilmReference();
  });

  $("album-files").addEventListener("change", (e) => {
    openAlbum(e.target.files);
    e.target.value = "";
  });
  $("album-reference").addEventListener("change", (e) => {
    setAlbumReference(e.target.files[0] || null);
  });
  $("clear-album-reference").addEventListener("click", () => setAlbumReference(null));
  $("album-use-result").addEventListener("click", () => {
    const name = `${stem(state.file.name)}_colorized.png`;
    setAlbumReference(new File([state.resultBlob], name, { type: "image/png" }));
  });
  $("album-run").addEventListener("click", runAlbum);
  $("album-close").addEventListener("click", closeAlbum);
  $("key-save").addEventListener("click", () => {
    state.apiKey = $("key").value.trim();
    sessionStorage.setItem("colorizer-api-key", state.apiKey);
    loadModels();
    loadExamples();
  });

  const drop = document.body;
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    $("drop").classList.add("dragging");
  });
  drop.addEventListener("dragleave", () => $("drop").classList.remove("dragging"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    $("drop").classList.remove("dragging");
    if (e.dataTransfer.files.length) openFile(e.dataTransfer.files[0]);
  });
}

wire();
loadModels();
loadExamples();
