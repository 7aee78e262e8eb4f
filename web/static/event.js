// The event page, live: server-sent events say "something changed"; the page then fetches its
// parts, rendered by the server's templates, and swaps those that differ. Uploads go one file
// at a time with a progress bar each; votes post in place; the countdown ticks locally.
"use strict";

(() => {
  const root = document.getElementById("event");
  if (!root) return;
  const eventId = root.dataset.eventId;
  const csrf = root.dataset.csrf;
  const maxBytes = Number(root.dataset.maxBytes);
  const sentences = JSON.parse(root.dataset.sentences);
  // The server's clock decides deadlines; remember how far this browser's clock is from it.
  let clockOffset = Number(root.dataset.serverNow) - Date.now();

  // The sentence for an error code when `during` ("upload", "vote") was tried.
  const sentenceFor = (code, fallback, during) =>
    sentences[`${during}.${code}`] || sentences[code] || fallback || sentences.internal;

  // --- live parts ---------------------------------------------------------------------------
  const shown = new Map(); // part name -> the HTML last applied (the server's own string)
  let fetching = false;
  let stale = false;

  async function refresh() {
    if (fetching) { stale = true; return; }
    fetching = true;
    try {
      const response = await fetch(`/events/${eventId}/parts`, {
        headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin",
      });
      if (response.ok) apply(await response.json());
    } catch {
      // the stream's reconnection will bring the next refresh
    } finally {
      fetching = false;
      if (stale) { stale = false; refresh(); }
    }
  }

  function apply(data) {
    clockOffset = data.now - Date.now();
    for (const [name, html] of Object.entries(data.parts)) {
      const el = root.querySelector(`[data-part="${name}"]`);
      if (!el || shown.get(name) === html) continue;
      const focusedId = el.contains(document.activeElement) ? document.activeElement.id : "";
      el.innerHTML = html;
      shown.set(name, html);
      PhotoSession.localTimes(el);
      if (focusedId && document.getElementById(focusedId)) document.getElementById(focusedId).focus();
    }
    root.dataset.phase = data.phase;
    const fieldset = document.getElementById("upload-fieldset");
    fieldset.disabled = !data.upload.enabled;
    fieldset.hidden = data.phase === "published";
    const why = document.getElementById("upload-why");
    why.textContent = data.upload.why;
    why.hidden = data.upload.enabled;
    tick();
  }

  const POLL_MS = 5000;
  const liveStatus = document.getElementById("live-status");
  function connect() {
    const source = new EventSource(`/api/events/${eventId}/stream`);
    source.addEventListener("open", () => { liveStatus.textContent = "Live: this page updates by itself."; });
    source.addEventListener("event", refresh);
    // A site going away changes no stored state, so nothing is pushed: look again now and then.
    setInterval(() => {
      if (document.visibilityState === "visible" && root.dataset.phase !== "published") refresh();
    }, POLL_MS);
    source.addEventListener("error", () => {
      liveStatus.textContent = "Live updates interrupted; reconnecting…";
    });
  }
  connect();

  // --- countdown ----------------------------------------------------------------------------
  function tick() {
    for (const el of root.querySelectorAll("[data-deadline]")) {
      const left = Math.max(0, Date.parse(el.dataset.deadline) - (Date.now() + clockOffset));
      const seconds = Math.ceil(left / 1000);
      el.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
    }
  }
  setInterval(tick, 250);
  tick();

  // --- uploads ------------------------------------------------------------------------------
  const form = document.getElementById("upload-form");
  const input = document.getElementById("photo-input");
  const queue = document.getElementById("queue");
  const dropzone = document.getElementById("dropzone");
  const waiting = [];
  let uploading = false;

  function row(file) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "file";
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = "Waiting…";
    item.append(name, " ", bar, state);
    queue.append(item);
    return { item, bar, state };
  }

  function fail(entry, file, sentence) {
    entry.item.classList.add("failed");
    entry.bar.remove();
    entry.state.textContent = ` Not added: ${sentence}`;
  }

  function enqueue(files) {
    if (document.getElementById("upload-fieldset").disabled) return;
    for (const file of files) {
      const entry = row(file);
      if (file.size > maxBytes) {
        fail(entry, file, sentenceFor("too_large"));
        continue;
      }
      waiting.push({ file, entry });
    }
    input.value = "";
    next();
  }

  function next() {
    if (uploading || !waiting.length) return;
    uploading = true;
    const { file, entry } = waiting.shift();
    send(file, entry).finally(() => { uploading = false; next(); });
  }

  function send(file, entry) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.upload.addEventListener("progress", (e) => {
        if (!e.lengthComputable) return;
        entry.bar.value = Math.round((e.loaded / e.total) * 100);
        entry.state.textContent = ` Uploading… ${entry.bar.value}%`;
      });
      xhr.upload.addEventListener("load", () => {
        entry.bar.value = 100;
        entry.state.textContent = " Saving on every site…";
      });
      xhr.addEventListener("load", () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch { body = {}; }
        if (xhr.status === 201) {
          entry.item.classList.add("done");
          entry.bar.remove();
          entry.state.textContent = ` Added (montage version ${body.montage_version}).`;
          refresh();
        } else {
          fail(entry, file, sentenceFor(body.error, body.message, "upload"));
        }
        resolve();
      });
      xhr.addEventListener("error", () => { fail(entry, file, sentenceFor("network", "", "upload")); resolve(); });
      const data = new FormData();
      data.append("photo", file, file.name);
      entry.state.textContent = " Uploading… 0%";
      xhr.send(data);
    });
  }

  input.addEventListener("change", () => enqueue([...input.files]));
  form.addEventListener("submit", (e) => { e.preventDefault(); enqueue([...input.files]); });
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (e) => { e.preventDefault(); dropzone.classList.add("dragging"); });
  }
  for (const type of ["dragleave", "drop"]) {
    dropzone.addEventListener(type, () => dropzone.classList.remove("dragging"));
  }
  dropzone.addEventListener("drop", (e) => { e.preventDefault(); enqueue([...e.dataTransfer.files]); });
  // A file dropped beside the zone must not navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  // --- votes ------------------------------------------------------------------------------
  // A vote asks every site (the first accept starts a round everywhere): the clicked button says
  // it is working, and after a few seconds why it takes a while. A reject asks first.
  const voteMessage = document.getElementById("vote-message");
  const SLOW_MS = 2500;

  function busy(button, text) {
    const label = button.textContent;
    button.classList.add("busy");
    button.setAttribute("aria-busy", "true");
    button.textContent = text;
    return () => {
      button.classList.remove("busy");
      button.removeAttribute("aria-busy");
      button.textContent = label;
    };
  }

  root.addEventListener("click", (e) => {
    const cancel = e.target.closest("[data-cancel]");
    if (!cancel) return;
    document.getElementById(cancel.dataset.cancel).hidden = true;
    const form = cancel.closest(".vote-form");
    form.querySelector("[data-confirm]").focus();
  });

  root.addEventListener("submit", async (e) => {
    const voteForm = e.target.closest(".vote-form");
    if (!voteForm) return;
    e.preventDefault();
    const button = e.submitter;
    if (button && button.dataset.confirm) {
      const ask = document.getElementById(button.dataset.confirm);
      ask.hidden = false;
      ask.querySelector("button[type=submit]").focus();
      return;
    }
    const buttons = voteForm.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    const starting = root.dataset.phase === "open";
    const decision = button ? button.value : "accept";
    const restore = button ? busy(button, decision === "reject" ? "Rejecting…"
      : starting ? "Starting the vote…" : "Sending your vote…") : () => {};
    voteMessage.textContent = "";
    voteMessage.classList.remove("working");
    const slow = setTimeout(() => {
      voteMessage.classList.add("working");
      voteMessage.textContent = starting
        ? "Still working: every site is being told that a vote starts. This can take a few seconds."
        : "Still working: your vote is being saved. This can take a few seconds.";
    }, SLOW_MS);
    const failed = (text) => {
      voteMessage.classList.remove("working");
      voteMessage.textContent = text;
      restore();
      buttons.forEach((b) => { b.disabled = false; });
    };
    try {
      const answer = await PhotoSession.postForm(voteForm, button ? [[button.name, button.value]] : []);
      clearTimeout(slow);
      if (answer.ok) {
        voteMessage.classList.remove("working");
        voteMessage.textContent = "";
      } else {
        failed(sentenceFor(answer.body.error, answer.body.message, "vote"));
      }
    } catch {
      clearTimeout(slow);
      failed(sentenceFor("network", "", "vote"));
    }
    refresh();
  });

  // --- larger view --------------------------------------------------------------------------
  const viewer = document.getElementById("viewer");
  const viewerImg = document.getElementById("viewer-img");
  const caption = document.getElementById("viewer-caption");
  let opener = null;

  function links() { return [...root.querySelectorAll("[data-part=photos] a.photo-link")]; }

  function show(link) {
    opener = link;
    viewerImg.src = link.href;
    viewerImg.alt = link.dataset.caption;
    caption.textContent = link.dataset.caption;
    const all = links();
    const inGrid = all.includes(link);
    document.getElementById("viewer-prev").hidden = !inGrid || all.length < 2;
    document.getElementById("viewer-next").hidden = !inGrid || all.length < 2;
    if (!viewer.open) viewer.showModal();
  }

  function step(by) {
    const all = links();
    const at = all.indexOf(opener);
    if (at >= 0 && all.length) show(all[(at + by + all.length) % all.length]);
  }

  root.addEventListener("click", (e) => {
    const link = e.target.closest("a.photo-link");
    if (!link || !viewer.showModal) return;
    e.preventDefault();
    show(link);
  });
  document.getElementById("viewer-close").addEventListener("click", () => viewer.close());
  document.getElementById("viewer-prev").addEventListener("click", () => step(-1));
  document.getElementById("viewer-next").addEventListener("click", () => step(1));
  viewer.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") step(-1);
    if (e.key === "ArrowRight") step(1);
  });
  viewer.addEventListener("close", () => { if (opener && document.contains(opener)) opener.focus(); });
  viewer.addEventListener("click", (e) => { if (e.target === viewer) viewer.close(); });
})();
