"use strict";

// Every element with an id, keyed by its camelCased id ("photo-input" -> els.photoInput).
const els = Object.fromEntries([...document.querySelectorAll("[id]")]
  .map((node) => [node.id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), node]));

const state = {
  csrf: "", maxBytes: 0, photos: [], garments: [], photoId: null, garmentId: null,
  busy: 0, ready: false, tryingOn: false, resultUrl: null, resultPhotoId: null, resultGarmentId: null,
  resultView: "photo",
};

// Small DOM helper: "text" sets textContent, every other prop is an attribute.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function showMessage(text, kind = "error") {
  els.message.textContent = text;
  els.message.className = kind;
}
function clearMessage() { showMessage("", ""); }

function setBusy(delta) {
  state.busy += delta;
  if (state.ready) document.body.dataset.state = state.busy > 0 ? "busy" : "ready";
}

const mb = (bytes) => (bytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, "");

// fetch wrapper: adds the CSRF header to writes, retries once after refreshing a stale
// token, and turns every failure into an Error whose message is ready to show.
async function api(path, { method = "GET", body, headers = {} } = {}, retried = false) {
  const opts = { method, body, credentials: "same-origin", headers: { ...headers } };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
  let res;
  try {
    res = await fetch(path, opts);
  } catch {
    throw new Error("Network error: could not reach the server. Check your connection and try again.");
  }
  if (res.ok) return res;
  const data = await res.json().catch(() => ({}));
  let text = data.error || `Request failed (HTTP ${res.status}).`;
  if (res.status === 403 && method !== "GET" && !retried) {
    await loadSession();
    return api(path, { method, body, headers }, true);
  }
  if (res.status === 429) {
    const wait = parseInt(res.headers.get("Retry-After"), 10);
    text = `Too many requests${Number.isFinite(wait) ? ` — try again in ${wait} s` : " — please wait a moment"}. (${text})`;
  }
  throw new Error(text);
}

// Runs one user action: clears the message, marks the page busy, reports failures.
async function run(task) {
  clearMessage();
  setBusy(+1);
  try { await task(); return true; }
  catch (err) { showMessage(err.message, "error"); return false; }
  finally { setBusy(-1); }
}

async function loadSession() {
  const data = await (await api("/api/session")).json();
  state.csrf = data.csrf_token;
  state.maxBytes = data.max_upload_bytes || 0;
  if (data.consent_text) els.consentText.textContent = data.consent_text;
}

async function loadPhotos() {
  const data = await (await api("/api/photos")).json();
  state.photos = data.photos || [];
  if (!state.photos.some((p) => p.id === state.photoId)) state.photoId = null;
  els.photoGrid.replaceChildren(...state.photos.map(photoCard));
  els.photosEmpty.hidden = state.photos.length > 0;
  updateSelection();
}

async function loadGarments() {
  const category = els.categoryFilter.value;
  const url = category ? `/api/garments?category=${encodeURIComponent(category)}` : "/api/garments";
  const data = await (await api(url)).json();
  state.garments = (data.garments || []).map((g) => ({ ...g, id: String(g.id) }));
  if (!state.garments.some((g) => g.id === state.garmentId)) state.garmentId = null;
  els.garmentGrid.replaceChildren(...state.garments.map(garmentCard));
  els.garmentsEmpty.hidden = state.garments.length > 0;
  updateSelection();
}

// Cards select on click, and on Enter/Space when focused with the keyboard.
function selectable(card, onSelect) {
  card.tabIndex = 0;
  card.addEventListener("click", onSelect);
  card.addEventListener("keydown", (ev) => {
    if (ev.target === card && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); onSelect(); }
  });
  return card;
}

function photoCard(photo) {
  const del = el("button", { type: "button", class: "delete-button", "data-photo-id": photo.id, text: "Delete" });
  del.addEventListener("click", (ev) => { ev.stopPropagation(); onDelete(del, photo); });
  const added = photo.created ? `Added ${new Date(photo.created * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })}` : "";
  return selectable(el("article", { class: "photo-card card", "data-photo-id": photo.id },
    el("img", { src: photo.image_url, alt: `Your photo ${photo.name}`, loading: "lazy" }),
    el("div", { class: "card-body" },
      el("p", { class: "card-title", text: photo.name }),
      el("p", { class: "card-sub", text: added })),
    el("div", { class: "card-actions" },
      el("button", { type: "button", class: "use-button", text: "Use" }), del),
  ), () => selectPhoto(photo.id));
}

function garmentCard(g) {
  const price = typeof g.price === "number" ? `${g.price.toLocaleString("ko-KR")}원` : "";
  const available = g.tryon !== false;
  const card = el("article", { class: available ? "garment-card card" : "garment-card card unavailable",
                               "data-garment-id": g.id },
    el("img", { src: g.image_url, alt: `${g.brand} ${g.name}`, loading: "lazy" }),
    el("div", { class: "card-body" },
      el("p", { class: "card-sub", text: g.brand }),
      el("p", { class: "card-title", text: g.name }),
      el("p", { class: "price", text: price }),
      available ? "" : el("p", { class: "unavailable-note", text: "Not yet available for try-on" })));
  if (!available) {
    card.title = g.tryon_refusal || "Not yet available for try-on";
    card.setAttribute("aria-disabled", "true");
    return selectable(card, () => showMessage(card.title));
  }
  return selectable(card, () => { state.garmentId = g.id; clearMessage(); updateSelection(); });
}

function selectPhoto(id) { state.photoId = id; clearMessage(); updateSelection(); }

function updateSelection() {
  for (const card of els.photoGrid.querySelectorAll(".photo-card")) {
    const on = card.dataset.photoId === state.photoId;
    card.classList.toggle("selected", on);
    card.querySelector(".use-button").textContent = on ? "Selected" : "Use";
  }
  for (const card of els.garmentGrid.querySelectorAll(".garment-card")) {
    card.classList.toggle("selected", card.dataset.garmentId === state.garmentId);
  }
  const photo = state.photos.find((p) => p.id === state.photoId);
  const garment = state.garments.find((g) => g.id === state.garmentId);
  els.tryonButton.disabled = !(photo && garment) || state.tryingOn;
  els.selection.textContent = photo && garment ? `${photo.name} + ${garment.brand} ${garment.name}`
    : photo ? "Now pick a garment." : garment ? "Now pick one of your photos." : "Pick a photo and a garment.";
}

async function onUpload() {
  clearMessage();
  const file = els.photoInput.files[0];
  if (!file) return showMessage("Choose a photo first.");
  if (!els.consent.checked) return showMessage("Please tick the consent box first: photos are only kept with your consent.");
  if (state.maxBytes && file.size > state.maxBytes) {
    return showMessage(`This photo is ${mb(file.size)} MB; the limit is ${mb(state.maxBytes)} MB.`);
  }
  const form = new FormData();
  form.append("photo", file, file.name);
  form.append("consent", "yes");
  els.uploadButton.disabled = true;
  els.uploadStatus.hidden = false;
  await run(async () => {
    const { photo } = await (await api("/api/photos", { method: "POST", body: form })).json();
    els.photoInput.value = "";
    els.consent.checked = false;  // consent is given per photo
    state.photoId = photo.id;
    await loadPhotos();
    showMessage(`${photo.name} is ready. Pick a garment to try on.`, "success");
  });
  els.uploadButton.disabled = false;
  els.uploadStatus.hidden = true;
}

function onDelete(button, photo) {
  if (!button.classList.contains("armed")) {
    clearMessage();
    button.classList.add("armed");
    button.textContent = "Confirm delete";
    button.timer = setTimeout(() => { button.classList.remove("armed"); button.textContent = "Delete"; }, 5000);
    return;
  }
  clearTimeout(button.timer);
  button.disabled = true;
  run(async () => {
    await api(`/api/photos/${encodeURIComponent(photo.id)}`, { method: "DELETE" });
    if (state.resultPhotoId === photo.id) els.result.hidden = true;
    await loadPhotos();
    showMessage(`${photo.name} was deleted for good.`, "success");
  }).then((ok) => {
    if (!ok) { button.disabled = false; button.classList.remove("armed"); button.textContent = "Delete"; }
  });
}

// The try-on in the person's own photo ("photo") or the model's 256x192 picture ("framed");
// returns the X-Tryon-Cache header.
async function showResult(photo, garment, view) {
  const res = await api("/api/tryon", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ photo_id: photo.id, garment_id: garment.id, view }),
  });
  const blob = await res.blob();
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  state.resultView = res.headers.get("X-Tryon-View") || view;
  els.resultImage.src = state.resultUrl;
  els.resultCaption.textContent = state.resultView === "photo" ? "Result, in your photo" : "Result, 256×192";
  // a photo stored before framings were kept comes back framed only: nothing to switch to
  els.viewButton.hidden = view === "photo" && state.resultView !== "photo";
  els.viewButton.textContent = state.resultView === "photo" ? "Show the model's 256×192 picture"
    : "Show it in your photo";
  return res.headers.get("X-Tryon-Cache");
}

function onSwitchView() {
  const photo = state.photos.find((p) => p.id === state.resultPhotoId);
  const garment = state.garments.find((g) => g.id === state.resultGarmentId);
  if (!photo || !garment) return;
  run(() => showResult(photo, garment, state.resultView === "photo" ? "framed" : "photo"));
}

async function onTryOn() {
  const photo = state.photos.find((p) => p.id === state.photoId);
  const garment = state.garments.find((g) => g.id === state.garmentId);
  if (!photo || !garment) return showMessage("Pick a photo and a garment first.");
  state.tryingOn = true;
  updateSelection();
  els.progress.hidden = false;
  const started = performance.now();
  await run(async () => {
    const cache = await showResult(photo, garment, "photo");
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    state.resultPhotoId = photo.id;
    state.resultGarmentId = garment.id;
    els.resultPerson.src = photo.image_url;
    els.resultPersonCaption.textContent = `You — ${photo.name}`;
    els.resultGarment.src = garment.image_url;
    els.resultGarmentCaption.textContent = `${garment.brand} — ${garment.name}`;
    els.result.dataset.cache = cache || "";
    els.resultMeta.textContent = `${cache === "hit" ? "From cache" : cache === "miss" ? "Freshly generated" : "Done"} in ${seconds} s.`;
    els.result.hidden = false;
    els.result.scrollIntoView({ behavior: "smooth", block: "nearest" });
  });
  state.tryingOn = false;
  els.progress.hidden = true;
  updateSelection();
}

async function init() {
  els.uploadButton.addEventListener("click", onUpload);
  els.tryonButton.addEventListener("click", onTryOn);
  els.viewButton.addEventListener("click", onSwitchView);
  els.categoryFilter.addEventListener("change", () => run(loadGarments));
  try {
    await loadSession();
    els.uploadButton.disabled = false;
    const results = await Promise.allSettled([loadPhotos(), loadGarments()]);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) showMessage(failed.reason.message);
  } catch (err) {
    showMessage(`Could not start: ${err.message}`);
  }
  state.ready = true;
  document.body.dataset.state = state.busy > 0 ? "busy" : "ready";
}

init();
