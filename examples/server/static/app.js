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
// /api/v1/login) authenticate every call; an expired access token is renewed
// once with the refresh cookie.
async function api(method, path, body, retried = false) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && !autoLogin && !retried) {
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
    el("td", { text: k.name || "" }),
    el("td", { class: "mono key", title: k.api_key, text: k.api_key }),
    el("td", { class: "date", text: when(k.created_at) }),
    el("td", { class: "date", text: when(k.last_used_at) }),
    el("td", { class: "num", text: String(k.total_uses) }),
  )));
  $("keys-empty").hidden = data.api_keys.length > 0;
  keySel.update();
}

$("keys-add").addEventListener("click", () => {
  $("key-form").hidden = false;
  $("key-created").hidden = true;
  $("key-name").value = "";
  $("key-dialog").showModal();
});

$("key-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("key-create").disabled = true;
  try {
    const created = await api("POST", "/api/v1/api_key/", { name: $("key-name").value.trim() });
    $("key-value").value = created.api_key;
    $("key-form").hidden = true;
    $("key-created").hidden = false;
    $("key-value").select();
    await loadKeys();
  } catch (err) { fail(err); } finally { $("key-create").disabled = false; }
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

async function loadVariables() {
  const vars = await api("GET", "/api/v1/variables/");
  $("vars-body").replaceChildren(...vars.map((v) => el("tr", { "data-name": v.name },
    el("td", { class: "check" }, el("input", { type: "checkbox", value: v.id, "aria-label": "Select " + v.name })),
    el("td", { class: "mono", text: v.name }),
    el("td", {}, el("span", { class: v.type === "Credential" ? "badge cred" : "badge", text: v.type })),
    v.type === "Credential" || v.value === null
      ? el("td", { class: "hidden-value", text: "••••••••" })
      : el("td", { class: "mono", text: v.value }),
    el("td", {}, ...(v.default_fields || []).map((f) => el("span", { class: "chip", text: f }))),
  )));
  $("vars-empty").hidden = vars.length > 0;
  varSel.update();
}

$("vars-add").addEventListener("click", () => {
  $("var-form").reset();
  $("var-value").type = "password";
  $("var-dialog").showModal();
});

$("var-type").addEventListener("change", () => {
  $("var-value").type = $("var-type").value === "Credential" ? "password" : "text";
});

$("var-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const fields = $("var-fields").value.split(",").map((s) => s.trim()).filter(Boolean);
  $("var-save").disabled = true;
  try {
    await api("POST", "/api/v1/variables/", {
      name: $("var-name").value.trim(), value: $("var-value").value,
      type: $("var-type").value, default_fields: fields,
    });
    $("var-form").reset();  // the value leaves the page
    $("var-dialog").close();
    await loadVariables();
  } catch (err) { fail(err); } finally { $("var-save").disabled = false; }
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
    return el("tr", {}, el("td", { text: f.name }), el("td", { class: "mono", text: f.id }), el("td", {}, ...fields));
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

function showTab() {
  const tab = (location.hash || "#api-keys").slice(1);
  const known = ["api-keys", "variables", "flows"].includes(tab) ? tab : "api-keys";
  for (const s of document.querySelectorAll(".panel")) s.hidden = s.id !== known;
  for (const a of document.querySelectorAll(".sidebar a")) a.classList.toggle("active", a.dataset.tab === known);
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
    $("who").textContent = me.username;
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

window.addEventListener("hashchange", showTab);
start();
