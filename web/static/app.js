// Small enhancements shared by every page: copy buttons, local times, the name and create forms.
// Everything works without this script; with it, forms answer in place.
"use strict";

document.documentElement.classList.add("js");

const PhotoSession = (() => {
  const csrfToken = () => {
    const field = document.querySelector("input[name=csrf_token]");
    return field ? field.value : (document.getElementById("event") || {}).dataset?.csrf || "";
  };

  // POST a form as url-encoded fields and read the JSON answer: {ok, status, body}.
  async function postForm(form, extra) {
    const fields = new URLSearchParams(new FormData(form));
    for (const [name, value] of extra || []) fields.append(name, value);
    const response = await fetch(form.action, {
      method: "POST",
      body: fields,
      headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
      credentials: "same-origin",
    });
    let body = {};
    try { body = await response.json(); } catch { body = {}; }
    return { ok: response.ok, status: response.status, body };
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const field = document.getElementById(button.dataset.copy);
      field.select();
      document.execCommand("copy");
    }
    const label = button.textContent;
    button.textContent = "Copied!";
    setTimeout(() => { button.textContent = label; }, 2000);
  }

  function localTimes(root) {
    for (const el of (root || document).querySelectorAll("time[data-local]")) {
      const when = new Date(el.getAttribute("datetime"));
      if (!Number.isNaN(when.getTime())) {
        el.textContent = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
      }
    }
  }

  return { postForm, copy, localTimes };
})();

document.addEventListener("click", (e) => {
  const button = e.target.closest("button.copy");
  if (button) {
    const field = document.getElementById(button.dataset.copy);
    PhotoSession.copy(field.value, button);
  }
  const share = e.target.closest("button.share-native");
  if (share) {
    navigator.share({ title: share.dataset.shareTitle, url: share.dataset.shareUrl }).catch(() => {});
  }
});

for (const share of document.querySelectorAll("button.share-native")) {
  share.hidden = !navigator.share;
}

PhotoSession.localTimes();

// The name form: save in place.
for (const form of document.querySelectorAll("form[data-enhance=name]")) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = form.querySelector(".form-status");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.classList.add("busy");
    button.textContent = "Saving…";
    try {
      const answer = await PhotoSession.postForm(form);
      status.textContent = answer.ok
        ? (answer.body.display_name
          ? `Saved: “${answer.body.display_name}”. You see it beside your photos now; others see it once you add a photo with it.`
          : "Saved: no name. Your photos show “guest”.")
        : (answer.body.message || "The name could not be saved. Please try again.");
    } catch {
      status.textContent = "The connection dropped, so the name was not saved. Please try again.";
    } finally {
      button.disabled = false;
      button.classList.remove("busy");
      button.textContent = "Save name";
    }
  });
}

// The create form: show the link to share, with its copy button, right here.
const createForm = document.getElementById("create-form");
if (createForm) {
  createForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = document.getElementById("create-error");
    const button = createForm.querySelector("button[type=submit]");
    error.textContent = "";
    button.disabled = true;
    button.classList.add("busy");
    button.textContent = "Creating on every site…";
    try {
      const answer = await PhotoSession.postForm(createForm);
      if (!answer.ok) {
        error.textContent = answer.body.message || "The event could not be created. Nothing was created: please try again.";
        return;
      }
      const created = document.getElementById("created");
      document.getElementById("created-link").value = answer.body.share_url;
      document.getElementById("created-open").href = answer.body.url;
      created.hidden = false;
      created.focus();
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = answer.body.url;
      link.textContent = answer.body.title;
      const badge = document.createElement("span");
      badge.className = "badge badge-open";
      badge.textContent = "open";
      item.append(link, " ", badge);
      document.getElementById("my-events").prepend(item);
      document.getElementById("no-events").hidden = true;
      createForm.reset();
    } catch {
      error.textContent = "The connection dropped. The event may have been created: check your events below.";
    } finally {
      button.disabled = false;
      button.classList.remove("busy");
      button.textContent = "Create event";
    }
  });
}
