// Parley account portal: plain ES module, no build step. It runs inside a
// partner's iframe with a session cookie scoped to one account.

// The one-time token must not stay in the address bar or the history.
if (location.search) history.replaceState(null, "", location.pathname);

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";
const origins = meta("parley-origins").split(" ").filter(Boolean);
const app = document.getElementById("app");

// ---- messages to the embedding page -------------------------------------
function tellParent(msg) {
  if (window.parent === window) return;
  for (const o of origins) {
    try { window.parent.postMessage({ source: "parley-portal", ...msg }, o); } catch { /* not that origin */ }
  }
}
let lastHeight = 0;
const resized = () => {
  const h = Math.ceil(document.documentElement.scrollHeight);
  if (h !== lastHeight) { lastHeight = h; tellParent({ type: "parley:resize", height: h }); }
};
new ResizeObserver(resized).observe(document.documentElement);

// ---- tiny DOM helper (no innerHTML: every value is text) -----------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style") el.style.cssText = v; // CSSOM: allowed under the portal CSP
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// ---- API -----------------------------------------------------------------
class SessionEnded extends Error {}
async function api(path, opts = {}) {
  const res = await fetch(`api/${path}`, {
    credentials: "same-origin",
    ...opts,
    headers: { "X-Parley-Portal": "1", ...(opts.body ? { "Content-Type": "application/json" } : {}), ...(opts.headers ?? {}) },
  });
  if (res.status === 401) throw new SessionEnded();
  if (res.status === 204) return null;
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || `request failed (${res.status})`);
  return body;
}

function ended(title = "Your session has ended", text = "Reloading the portal…") {
  closeSocket();
  app.replaceChildren(h("div", { class: "notice", id: "session-ended" }, h("h1", {}, title), h("p", {}, text)));
  tellParent({ type: "parley:expired" });
}

// ---- formatting ------------------------------------------------------------
const nf = new Intl.NumberFormat();
const fmtNum = (n) => nf.format(Math.round(Number(n) * 100) / 100);
function fmtDuration(s) {
  s = Number(s) || 0;
  const m = Math.floor(s / 60), sec = s % 60;
  return m >= 60 ? `${Math.floor(m / 60)}h ${m % 60}m` : `${m}:${String(sec).padStart(2, "0")}`;
}
function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}
const LABELS = { "sip-registrations": "SIP registrations", "api-requests": "API requests", "twiml-fetches": "TwiML fetches",
  "calls-sip": "Calls (SIP)", "calls-client": "Calls (app clients)", "calls-number": "Calls (numbers)", "no-answer": "no answer" };
const label = (s) => LABELS[s] ?? String(s).charAt(0).toUpperCase() + String(s).slice(1).replaceAll("-", " ");
const presencePill = (st) => h("span", { class: `pill ${{ available: "ok", busy: "warn", offline: "idle" }[st] ?? "info"}` }, st);
const callPill = (st) => h("span", { class: `pill ${{ completed: "ok", "in-progress": "info", ringing: "info", queued: "idle", busy: "warn", "no-answer": "warn", failed: "bad", canceled: "idle" }[st] ?? "idle"}` }, String(st).replaceAll("-", " "));
const displayIdentity = (id) => id.replace(/^client:/, "");

// ---- state -----------------------------------------------------------------
let session = null;
let current = "";
let socket = null;
const presence = new Map(); // identity → item
let flashIdentity = "";

function closeSocket() { if (socket) { socket.onclose = null; socket.close(); socket = null; } }

const TABS = [
  { id: "clients", feature: "presence", title: "Clients", render: renderClients },
  { id: "calls", feature: "calls", title: "Recent calls", render: renderCalls },
  { id: "usage", feature: "usage", title: "Usage", render: renderUsage },
  { id: "alerts", feature: "triggers", title: "Usage alerts", render: renderAlerts },
];

async function start() {
  if (meta("parley-state") !== "ok") return ended("This portal link has expired", "Fetching a fresh one…");
  try {
    session = await api("session");
  } catch (e) {
    return e instanceof SessionEnded ? ended() : ended("The portal is unavailable", e.message);
  }
  const left = new Date(session.expires_at) - Date.now();
  if (left > 0) setTimeout(() => ended(), Math.min(left, 2 ** 31 - 1));
  const tabs = TABS.filter((t) => session.features.includes(t.feature));
  const initial = session.account.friendly_name.trim().charAt(0).toUpperCase() || "#";
  const live = h("span", { class: "live", id: "live" }, h("span", { class: "dot" }), "Live");
  app.replaceChildren(
    h("header", { class: "top" },
      h("div", { class: "who" },
        h("div", { class: "avatar", "aria-hidden": "true" }, initial),
        h("div", {},
          h("h1", { id: "account-name" }, session.account.friendly_name),
          h("div", { class: "sub" }, `Managed by ${session.partner.friendly_name} · `, h("span", { class: "mono" }, session.account.sid)))),
      session.features.includes("presence") ? live : null),
    h("nav", { class: "tabs", role: "tablist" },
      tabs.map((t) => h("button", { class: "tab", role: "tab", id: `tab-${t.id}`, "aria-selected": "false", onclick: () => show(t.id) }, t.title))),
    h("section", { id: "view" }),
    h("div", { class: "footer" }, "Powered by Parley"));
  if (tabs.length === 0) {
    document.getElementById("view").append(h("div", { class: "panel empty" }, h("strong", {}, "Nothing to show yet"), "Your provider has not enabled any portal features."));
    return;
  }
  if (session.features.includes("presence")) connectPresence();
  show(tabs[0].id);
}

async function show(id) {
  current = id;
  for (const b of document.querySelectorAll(".tab")) b.setAttribute("aria-selected", String(b.id === `tab-${id}`));
  const view = document.getElementById("view");
  try {
    const node = await TABS.find((t) => t.id === id).render();
    if (current === id) view.replaceChildren(node);
  } catch (e) {
    if (e instanceof SessionEnded) return ended();
    view.replaceChildren(h("div", { class: "panel empty" }, h("strong", {}, "Could not load this page"), e.message));
  }
}

// ---- clients & presence (live over WebSocket) ------------------------------
function connectPresence(attempt = 0) {
  const url = new URL("api/presence/ws", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(url);
  socket.onopen = () => { attempt = 0; document.getElementById("live")?.classList.add("on"); };
  socket.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "snapshot") {
      presence.clear();
      for (const p of msg.presence) presence.set(p.identity, p);
    } else if (msg.type === "presence") {
      const prev = presence.get(msg.identity) ?? { identity: msg.identity, transports: [] };
      if (msg.bindings === 0 && msg.status === "offline") presence.set(msg.identity, { ...prev, status: "offline", bindings: 0 });
      else presence.set(msg.identity, { ...prev, status: msg.status, bindings: msg.bindings, transports: msg.transports ?? prev.transports });
      flashIdentity = msg.identity;
    } else if (msg.type === "expired") {
      return ended();
    }
    if (current === "clients") show("clients");
  };
  socket.onclose = () => {
    document.getElementById("live")?.classList.remove("on");
    socket = null;
    // The session may have ended; the next API call tells. Otherwise reconnect.
    api("session").then(() => setTimeout(() => connectPresence(attempt + 1), Math.min(1000 * 2 ** attempt, 15000)),
      (e) => { if (e instanceof SessionEnded) ended(); });
  };
}

function renderClients() {
  const items = [...presence.values()].sort((a, b) => a.identity.localeCompare(b.identity));
  const online = items.filter((p) => p.status !== "offline").length;
  const devices = items.reduce((n, p) => n + (p.bindings || 0), 0);
  const stats = h("div", { class: "stats" },
    stat("Clients online", online), stat("Registered devices", devices), stat("Known clients", items.length));
  if (items.length === 0) {
    return h("div", {}, stats, h("div", { class: "panel empty", id: "clients-empty" },
      h("strong", {}, "No clients registered"), "Phones and apps appear here as soon as they sign in."));
  }
  const rows = items.map((p) => {
    const tr = h("tr", { "data-identity": p.identity, class: p.identity === flashIdentity ? "flash" : "" },
      h("td", {}, h("strong", {}, displayIdentity(p.identity)), p.identity.startsWith("client:") ? h("div", { class: "muted" }, "App client") : h("div", { class: "muted" }, "SIP device")),
      h("td", {}, presencePill(p.status)),
      h("td", { class: "num" }, p.bindings ?? 0),
      h("td", { class: "hide-sm muted" }, (p.transports ?? []).join(", ").toUpperCase() || "—"));
    return tr;
  });
  flashIdentity = "";
  return h("div", {}, stats, h("div", { class: "panel" },
    h("div", { class: "panel-head" }, h("h2", {}, "Clients"), h("span", { class: "hint" }, "Updates live")),
    h("table", { id: "clients-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Client"), h("th", {}, "Status"), h("th", { class: "num" }, "Devices"), h("th", { class: "hide-sm" }, "Transport"))),
      h("tbody", {}, rows))));
}

function stat(name, value, unit = "") {
  return h("div", { class: "stat" }, h("div", { class: "label" }, name), h("div", { class: "value" }, fmtNum(value), unit ? h("span", { class: "unit" }, unit) : null));
}

// ---- calls -------------------------------------------------------------------
async function renderCalls() {
  const { calls } = await api("calls");
  if (calls.length === 0) {
    return h("div", { class: "panel empty", id: "calls-empty" }, h("strong", {}, "No calls yet"), "Calls made and received by this account show up here.");
  }
  return h("div", { class: "panel" },
    h("div", { class: "panel-head" }, h("h2", {}, "Recent calls"), h("span", { class: "hint" }, `Last ${calls.length}`)),
    h("table", { id: "calls-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "From"), h("th", {}, "To"), h("th", { class: "hide-sm" }, "Direction"), h("th", {}, "Status"), h("th", {}, "Started"), h("th", { class: "num" }, "Duration"))),
      h("tbody", {}, calls.map((c) => h("tr", { "data-call": c.sid },
        h("td", {}, displayIdentity(c.from)), h("td", {}, displayIdentity(c.to)),
        h("td", { class: "hide-sm muted" }, String(c.direction).replaceAll("-", " ")), h("td", {}, callPill(c.status)),
        h("td", { class: "muted" }, fmtTime(c.start_time)), h("td", { class: "num" }, fmtDuration(c.duration)))))));
}

// ---- usage ---------------------------------------------------------------------
async function renderUsage() {
  const { month, usage } = await api("usage");
  const by = new Map(usage.map((u) => [u.category, u]));
  const pick = (c) => by.get(c) ?? { count: 0, usage: 0, usage_unit: "" };
  const monthName = new Date(`${month}-01T00:00:00Z`).toLocaleString([], { month: "long", year: "numeric", timeZone: "UTC" });
  const stats = h("div", { class: "stats" },
    stat("Calls", pick("calls").count), stat("Call minutes", pick("calls").usage, "min"),
    stat("Registrations", pick("sip-registrations").count), stat("API requests", pick("api-requests").count));
  const rows = usage.filter((u) => u.count > 0 || u.usage > 0);
  return h("div", {}, stats, h("div", { class: "panel" },
    h("div", { class: "panel-head" }, h("h2", {}, `Usage in ${monthName}`), h("span", { class: "hint" }, "By category")),
    rows.length === 0 ? h("div", { class: "empty" }, h("strong", {}, "No usage this month"), "Usage appears as the account makes calls and requests.")
      : h("table", { id: "usage-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Category"), h("th", { class: "num" }, "Count"), h("th", { class: "num" }, "Usage"))),
        h("tbody", {}, rows.map((u) => h("tr", { "data-category": u.category },
          h("td", { class: "cap" }, label(u.category)), h("td", { class: "num" }, `${fmtNum(u.count)} ${u.count_unit}`),
          h("td", { class: "num" }, `${fmtNum(u.usage)} ${u.usage_unit}`)))))));
}

// ---- usage triggers ----------------------------------------------------------------
async function renderAlerts() {
  const { triggers } = await api("triggers");
  const err = h("div", { class: "form-error", id: "trigger-error", role: "alert" });
  const categories = session.categories ?? ["calls"];
  const form = h("form", { class: "grid", id: "trigger-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const body = {
      friendly_name: f.get("friendly_name"), usage_category: f.get("usage_category"), trigger_value: f.get("trigger_value"),
      trigger_by: f.get("trigger_by"), recurring: f.get("recurring"), callback_url: f.get("callback_url"), suspend: f.get("suspend") === "on",
    };
    const btn = ev.target.querySelector("button"); btn.disabled = true;
    try { await api("triggers", { method: "POST", body: JSON.stringify(body) }); show("alerts"); }
    catch (e) { if (e instanceof SessionEnded) return ended(); err.textContent = e.message; btn.disabled = false; }
  } },
    h("label", {}, "Name", h("input", { name: "friendly_name", placeholder: "Monthly minutes cap", maxlength: "64" })),
    h("label", {}, "Category", h("select", { name: "usage_category" }, categories.map((c) => h("option", { value: c }, label(c))))),
    h("label", {}, "Measure", h("select", { name: "trigger_by" }, h("option", { value: "count" }, "Count"), h("option", { value: "usage" }, "Usage (minutes, …)"))),
    h("label", {}, "Threshold", h("input", { name: "trigger_value", type: "number", min: "0", step: "any", required: true, placeholder: "1000" })),
    h("label", {}, "Repeat", h("select", { name: "recurring" }, h("option", { value: "" }, "Once"), h("option", { value: "daily" }, "Daily"), h("option", { value: "monthly" }, "Monthly"), h("option", { value: "yearly" }, "Yearly"))),
    h("label", {}, "Notify URL", h("input", { name: "callback_url", type: "url", placeholder: "https://example.com/hooks/usage" })),
    h("label", { class: "check" }, h("input", { name: "suspend", type: "checkbox" }), "Suspend the account when reached"),
    h("div", {}, h("button", { class: "btn", type: "submit", id: "trigger-create" }, "Create alert")));
  const list = triggers.length === 0
    ? h("div", { class: "empty", id: "triggers-empty" }, h("strong", {}, "No usage alerts"), "Create one above to be told — or stop service — when usage crosses a threshold.")
    : h("table", { id: "triggers-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Alert"), h("th", {}, "Category"), h("th", {}, "Progress"), h("th", { class: "hide-sm" }, "Repeats"), h("th", {}, "Status"), h("th", {}))),
      h("tbody", {}, triggers.map((t) => {
        const pct = Math.min(100, (t.current_value / Number(t.trigger_value)) * 100 || 0);
        return h("tr", { "data-trigger": t.sid },
          h("td", {}, h("strong", {}, t.friendly_name || label(t.usage_category)), h("div", { class: "muted" }, t.action === "suspend-account" ? "Suspends the account" : "Notifies")),
          h("td", { class: "cap" }, label(t.usage_category)),
          h("td", {}, h("div", { class: "muted" }, `${fmtNum(t.current_value)} / ${fmtNum(t.trigger_value)} ${t.trigger_by === "usage" ? "" : ""}`), h("div", { class: "progress" }, h("span", { style: `width:${pct.toFixed(1)}%` }))),
          h("td", { class: "hide-sm muted" }, t.recurring || "once"),
          h("td", {}, t.date_fired ? h("span", { class: "pill warn" }, "fired") : h("span", { class: "pill ok" }, "armed")),
          h("td", { class: "num" }, h("button", { class: "btn ghost", type: "button", onclick: async () => {
            try { await api(`triggers/${encodeURIComponent(t.sid)}`, { method: "DELETE" }); show("alerts"); }
            catch (e) { if (e instanceof SessionEnded) ended(); else err.textContent = e.message; }
          } }, "Delete")));
      })));
  return h("div", {},
    h("div", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "New usage alert")), h("div", { class: "panel-body" }, form, err)),
    h("div", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Usage alerts"), h("span", { class: "hint" }, `${triggers.length} configured`)), list));
}

start();
