// keyflow web UI: plain JavaScript over the JSON API. Everything from the
// server is inserted with textContent, never as HTML.
"use strict";

const autoLogin = document.body.dataset.autoLogin === "true";
const $ = (id) => document.getElementById(id);

// ---- API ---------------------------------------------------------------

class APIError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

// With auto-login off, the login cookies (HttpOnly, set by POST
// /api/v1/login) authenticate every call; a refused call (the access cookie
// expired, or was revoked) is retried once after renewing the tokens with
// the refresh cookie.
async function api(method, path, body, retried = false) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if ((res.status === 401 || res.status === 403) && !autoLogin && !retried) {
    const r = await fetch("/api/v1/refresh", { method: "POST", credentials: "same-origin" });
    if (r.ok) return api(method, path, body, true);
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    let detail = data && data.detail;
    if (typeof detail !== "string") detail = detail ? JSON.stringify(detail) : res.statusText;
    throw new APIError(res.status, detail);
  }
  return data;
}

// ---- helpers -----------------------------------------------------------

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function when(iso) {
  if (!iso) return "Never";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

let toastTimer;
function toast(msg, bad = false) {
  const t = $("toast");
  t.textContent = msg;
  t.className = bad ? "toast bad" : "toast";
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

function fail(err) {
  if (err instanceof APIError && (err.status === 401 || err.status === 403)) {
    if (!autoLogin) { showLogin("Your session has ended: sign in again."); return; }
    toast("Session expired: reload the page.", true);
    return;
  }
  toast(err.message || String(err), true);
}

// Show err inside an open dialog (a toast would sit under its backdrop);
// a refused session still goes through fail.
function dialogError(id, err) {
  if (err instanceof APIError && (err.status === 401 || err.status === 403)) { fail(err); return; }
  const p = $(id);
  p.textContent = err.message || String(err);
  p.hidden = false;
}

function confirmDelete(text) {
  return new Promise((resolve) => {
    const d = $("confirm-dialog");
    $("confirm-text").textContent = text;
    d.returnValue = "";
    d.onclose = () => resolve(d.returnValue === "ok");
    d.showModal();
  });
}

// Wire a table's "select all" box and its Delete button.
function selection(allBox, body, deleteBtn) {
  const boxes = () => [...body.querySelectorAll("input[type=checkbox]")];
  const update = () => {
    const checked = boxes().filter((b) => b.checked);
    deleteBtn.disabled = checked.length === 0;
    allBox.checked = checked.length > 0 && checked.length === boxes().length;
  };
  allBox.addEventListener("change", () => { boxes().forEach((b) => { b.checked = allBox.checked; }); update(); });
  body.addEventListener("change", update);
  return { selected: () => boxes().filter((b) => b.checked).map((b) => b.value), update };
}

// ---- API keys ----------------------------------------------------------

const keySel = selection($("keys-all"), $("keys-body"), $("keys-delete"));

async function loadKeys() {
  const data = await api("GET", "/api/v1/api_key/");
  const body = $("keys-body");
  body.replaceChildren(...data.api_keys.map((k) => el("tr", { "data-name": k.name || "" },
    el("td", { class: "check" }, el("input", { type: "checkbox", value: k.id, "aria-label": "Select " + (k.name || "key") })),
    el("td", { class: "name", text: k.name || "" }),
    el("td", { class: "mono key", "data-label": "Key", title: k.api_key, text: k.api_key }),
    el("td", { class: "date", "data-label": "Created", text: when(k.created_at) }),
    el("td", { class: "date", "data-label": "Last used", text: when(k.last_used_at) }),
    el("td", { class: "num", "data-label": "Total uses", text: String(k.total_uses) }),
    el("td", { class: "limits", "data-label": "Limits", text: limitsText(k) }),
  )));
  $("keys-empty").hidden = data.api_keys.length > 0;
  keySel.update();
}

// limitsText shows a key's usage limits and what remains of its quota.
function limitsText(k) {
  const parts = [];
  if (k.rate_limits) parts.push(k.rate_limits.join(", "));
  if (k.quota != null) {
    parts.push(`${k.quota_remaining.toLocaleString("en-US")} of ${k.quota.toLocaleString("en-US")} left` +
      (k.refill ? ` (refill ${k.refill})` : ""));
  }
  return parts.join(" · ") || "None";
}

// The "Add New" dialog's presets of usage limits, as apikeyhttp takes them.
const limitPresets = {
  trial: { quota: 50 },
  minute: { rate_limits: ["60/1m"] },
  daily: { rate_limits: ["100/1m", "10000/24h"] },
  monthly: { quota: 10000, refill: "10000/month" },
};

$("key-limits").addEventListener("change", () => {
  $("key-limits-custom").hidden = $("key-limits").value !== "custom";
});

// keyLimits returns the limits fields of the new key's request.
function keyLimits() {
  const choice = $("key-limits").value;
  if (choice !== "custom") return limitPresets[choice] || {};
  const out = {};
  const rates = $("key-rate").value.split(/[\s,]+/).filter(Boolean);
  if (rates.length) out.rate_limits = rates;
  if ($("key-quota").value !== "") out.quota = Number($("key-quota").value);
  if ($("key-refill").value.trim()) out.refill = $("key-refill").value.trim();
  return out;
}

$("keys-add").addEventListener("click", () => {
  $("key-error").hidden = true;
  $("key-form").hidden = false;
  $("key-created").hidden = true;
  $("key-name").value = "";
  $("key-limits").value = "";
  $("key-limits-custom").hidden = true;
  for (const id of ["key-rate", "key-quota", "key-refill"]) $(id).value = "";
  $("key-dialog").showModal();
});

$("key-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("key-create").disabled = true;
  try {
    const created = await api("POST", "/api/v1/api_key/", { name: $("key-name").value.trim(), ...keyLimits() });
    $("key-value").value = created.api_key;
    $("key-form").hidden = true;
    $("key-created").hidden = false;
    $("key-value").select();
    await loadKeys();
  } catch (err) { dialogError("key-error", err); } finally { $("key-create").disabled = false; }
});

$("key-copy").addEventListener("click", async () => {
  const v = $("key-value");
  try { await navigator.clipboard.writeText(v.value); }
  catch { v.select(); document.execCommand("copy"); }
  $("key-copy").textContent = "Copied";
  setTimeout(() => { $("key-copy").textContent = "Copy"; }, 1500);
});

$("key-done").addEventListener("click", () => {
  $("key-value").value = "";  // the key leaves the page with the dialog
  $("key-dialog").close();
});

$("keys-delete").addEventListener("click", async () => {
  const ids = keySel.selected();
  if (!(await confirmDelete(`Delete ${ids.length} API key(s)? Requests using them are refused at once.`))) return;
  try {
    for (const id of ids) await api("DELETE", "/api/v1/api_key/" + encodeURIComponent(id));
    toast(`Deleted ${ids.length} API key(s).`);
  } catch (err) { fail(err); }
  await loadKeys().catch(fail);
});

// ---- global variables --------------------------------------------------

const varSel = selection($("vars-all"), $("vars-body"), $("vars-delete"));

let variables = [];  // as last listed; Credential values are null

async function loadVariables() {
  variables = await api("GET", "/api/v1/variables/");
  $("vars-body").replaceChildren(...variables.map((v) => el("tr", { "data-name": v.name, "data-id": v.id, class: "editable" },
    el("td", { class: "check" }, el("input", { type: "checkbox", value: v.id, "aria-label": "Select " + v.name })),
    el("td", {}, el("button", { type: "button", class: "link name mono", title: "Edit " + v.name, text: v.name })),
    el("td", { "data-label": "Type" }, el("span", { class: v.type === "Credential" ? "badge cred" : "badge", text: v.type })),
    v.type === "Credential" || v.value === null
      ? el("td", { class: "hidden-value", "data-label": "Value", title: "Credential values are never shown", text: "••••••••" })
      : el("td", { class: "mono value", "data-label": "Value", title: v.value, text: v.value }),
    el("td", { "data-label": "Apply to" }, ...(v.default_fields || []).map((f) => el("span", { class: "chip", text: f }))),
  )));
  $("vars-empty").hidden = variables.length > 0;
  $("vars-hint").hidden = variables.length === 0;
  varSel.update();
}

// The variable dialog creates (editing null) or updates a variable with the
// API's rules: a Credential's value is never shown, only replaced (left
// empty, it is kept); a Generic's value is shown and edited; changing the
// type is allowed, but a Credential made Generic needs a new value, so that
// the secret is never revealed here (docs/langflow-compatibility.md#settings-ui).
let editing = null;

function openVariableDialog(v) {
  editing = v || null;
  $("var-form").reset();
  $("var-error").hidden = true;
  $("var-title").textContent = v ? "Update Variable" : "Create Variable";
  $("var-save").textContent = v ? "Update Variable" : "Save Variable";
  if (v) {
    $("var-type").value = v.type;
    $("var-name").value = v.name;
    $("var-value").value = v.type === "Credential" ? "" : (v.value ?? "");
    $("var-fields").value = (v.default_fields || []).join(", ");
  }
  syncValueField();
  $("var-dialog").showModal();
}

function syncValueField() {
  const input = $("var-value"), hint = $("var-value-hint");
  const credential = $("var-type").value === "Credential";
  input.type = credential ? "password" : "text";
  const keepsSecret = editing && editing.type === "Credential";
  input.required = !(keepsSecret && credential);
  input.placeholder = keepsSecret && credential ? "•••••••• (unchanged)" : "";
  hint.hidden = !keepsSecret;
  hint.textContent = !keepsSecret ? ""
    : credential ? "Credential values are never shown. Type a new value to replace it, or leave this empty to keep it."
    : "A Credential's value is never shown, so as a Generic variable it needs a new value.";
}

$("vars-add").addEventListener("click", () => openVariableDialog(null));

$("vars-body").addEventListener("click", (ev) => {
  if (ev.target.closest("input[type=checkbox], td.check")) return;
  const row = ev.target.closest("tr[data-id]");
  const v = row && variables.find((x) => x.id === row.dataset.id);
  if (v) openVariableDialog(v);
});

$("var-type").addEventListener("change", syncValueField);

$("var-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const fields = $("var-fields").value.split(",").map((s) => s.trim()).filter(Boolean);
  const name = $("var-name").value.trim(), type = $("var-type").value, value = $("var-value").value;
  $("var-save").disabled = true;
  $("var-error").hidden = true;
  try {
    if (editing) {
      const patch = { default_fields: fields };
      if (name !== editing.name) patch.name = name;
      if (type !== editing.type) patch.type = type;
      // A Credential's value is sent only when a new one was typed.
      if (editing.type === "Credential" ? value !== "" : value !== editing.value) patch.value = value;
      await api("PATCH", "/api/v1/variables/" + encodeURIComponent(editing.id), patch);
      toast(`Variable ${name} updated.`);
    } else {
      await api("POST", "/api/v1/variables/", { name, value, type, default_fields: fields });
      toast(`Variable ${name} created.`);
    }
    $("var-form").reset();  // the value leaves the page
    editing = null;
    $("var-dialog").close();
    await loadVariables();
  } catch (err) { dialogError("var-error", err); } finally { $("var-save").disabled = false; }
});

$("var-dialog").addEventListener("close", () => {
  // The close event comes a task after close(): if the dialog was opened
  // again meanwhile (another variable clicked at once), leave it alone.
  if ($("var-dialog").open) return;
  $("var-form").reset();  // also on Cancel and Escape: the value leaves the page
  editing = null;
});

$("vars-delete").addEventListener("click", async () => {
  const ids = varSel.selected();
  if (!(await confirmDelete(`Delete ${ids.length} variable(s)?`))) return;
  try {
    for (const id of ids) await api("DELETE", "/api/v1/variables/" + encodeURIComponent(id));
    toast(`Deleted ${ids.length} variable(s).`);
  } catch (err) { fail(err); }
  await loadVariables().catch(fail);
});

// ---- flows -------------------------------------------------------------

async function loadFlows() {
  const flows = await api("GET", "/api/v1/flows/");
  const names = new Set();
  $("flows-body").replaceChildren(...flows.map((f) => {
    const fields = Object.entries(f.fields).sort(([a], [b]) => a.localeCompare(b)).map(([name, v]) => {
      names.add(name);
      const how = v.variable ? "→ " + v.variable : v.value ? "= (value set in the flow)" : "(empty)";
      return el("span", { class: "chip", text: `${name} ${how}` });
    });
    return el("tr", {}, el("td", { class: "name", text: f.name }), el("td", { class: "mono id", "data-label": "ID", text: f.id }),
      el("td", { "data-label": "Fields" }, ...fields));
  }));
  $("field-names").replaceChildren(...[...names].map((n) => el("option", { value: n })));
  const curl = $("flows-curl");
  curl.hidden = flows.length === 0;
  if (flows.length) {
    curl.textContent = `curl -X POST \\\n  "${location.origin}/api/v1/run/${flows[0].id}?stream=false" \\\n` +
      `  -H 'Content-Type: application/json' \\\n  -H 'x-api-key: API_KEY' \\\n  -d '{"inputs": {"text":""}, "tweaks": {}}'`;
  }
}

// ---- shell -------------------------------------------------------------

const loaders = { "api-keys": loadKeys, variables: loadVariables, flows: loadFlows };

function currentTab() {
  const tab = (location.hash || "#api-keys").slice(1);
  return tab in loaders ? tab : "api-keys";
}

function showTab() {
  const known = currentTab();
  for (const s of document.querySelectorAll(".panel")) s.hidden = s.id !== known;
  for (const a of document.querySelectorAll(".sidebar a")) {
    a.classList.toggle("active", a.dataset.tab === known);
    if (a.dataset.tab === known) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

// A tab shows what the server has now each time it is opened, and when the
// page comes back into view (key usage changes while you look elsewhere).
function refreshTab() {
  if ($("app").hidden || document.visibilityState !== "visible") return;
  loaders[currentTab()]().catch(fail);
}

for (const d of document.querySelectorAll("dialog")) {
  d.querySelector(".cancel")?.addEventListener("click", () => d.close());
}
$("confirm-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  $("confirm-dialog").close("ok");
});

function showLogin(message) {
  $("app").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-error").hidden = !message;
  $("login-username").focus();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new URLSearchParams({ username: $("login-username").value, password: $("login-password").value });
  $("login-password").value = "";
  const res = await fetch("/api/v1/login", { method: "POST", credentials: "same-origin", body: form });
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    const detail = data && typeof data.detail === "string" ? data.detail : res.statusText;
    showLogin(detail);
    return;
  }
  await start();
});

$("signout").addEventListener("click", async () => {
  await fetch("/api/v1/logout", { method: "POST", credentials: "same-origin" }).catch(() => null);
  showLogin();
});

async function start() {
  if (!autoLogin) {
    let me;
    try {
      me = await api("GET", "/api/v1/users/whoami");
    } catch (err) {
      showLogin(err instanceof APIError && (err.status === 401 || err.status === 403) ? "" : err.message);
      return;
    }
    $("who").textContent = "Signed in as " + me.username;
  }
  try {
    await loadKeys();
  } catch (err) { fail(err); return; }
  $("login").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = autoLogin;
  showTab();
  await Promise.all([loadVariables(), loadFlows()]).catch(fail);
}

window.addEventListener("hashchange", () => { showTab(); refreshTab(); });
for (const a of document.querySelectorAll(".sidebar a")) {
  a.addEventListener("click", () => { if (a.dataset.tab === currentTab()) refreshTab(); });  // no hashchange then
}
document.addEventListener("visibilitychange", refreshTab);
start();
