// likeguard review console (streams/console.py serves it).
//
// Alert ids, entity ids and sample ids come from user traffic: everything
// shown is put in the page with textContent on nodes built here, never as
// markup. The token comes from "#token=..." in the URL (then dropped from
// the address bar) or from the login form, and stays in this tab's
// sessionStorage.
"use strict";

(function () {
  const API = "/console/";
  const REFRESH_MS = 5000;
  const TOKEN_KEY = "likeguard-console-token";
  const REVIEWER_KEY = "likeguard-console-reviewer";
  const SEVERITIES = ["info", "warning", "critical"];
  const $ = (id) => document.getElementById(id);

  let token = null;

  function takeToken() {
    const m = /(?:^#|&)token=([^&]*)/.exec(window.location.hash);
    if (m) {
      token = decodeURIComponent(m[1]);
      sessionStorage.setItem(TOKEN_KEY, token);
      history.replaceState(null, "", window.location.pathname + window.location.search);
    } else {
      token = sessionStorage.getItem(TOKEN_KEY);
    }
  }

  function askToken(why) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("login-why").textContent = why;
    $("login").hidden = false;
    $("token-input").focus();
    status(why, true);
  }

  function status(text, error) {
    const s = $("status");
    s.textContent = text;
    s.className = error ? "error" : "";
  }

  // an element with text (never parsed as HTML) and optional class
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function append(parent, ...children) {
    for (const c of children) parent.appendChild(c);
    return parent;
  }

  class Unauthorized extends Error {}

  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = Object.assign({ "Authorization": "Bearer " + token }, opts.headers || {});
    opts.cache = "no-store";
    const r = await fetch(API + path, opts);
    if (r.status === 401) {
      askToken("The token was refused; enter the console token.");
      throw new Unauthorized();
    }
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) throw new Error((body && body.error) || ("HTTP " + r.status));
    return body;
  }

  function fmtNum(v) {
    return typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3).replace(/0+$/, "") : String(v);
  }

  function reasonsCell(reasons) {
    const ul = el("ul");
    for (const r of reasons || []) {
      const li = el("li");
      append(li, el("code", r.code), el("span", " " + fmtNum(r.value) + " vs " + fmtNum(r.threshold)));
      if (r.detail) append(li, el("div", r.detail, "detail"));
      ul.appendChild(li);
    }
    return ul;
  }

  function evidenceCell(evidence) {
    const box = el("div");
    const ul = el("ul");
    const samples = (evidence && evidence.sample_ids) || [];
    for (const [k, v] of Object.entries(evidence || {})) {
      if (k === "sample_ids" || v === null || typeof v === "object") continue;
      ul.appendChild(el("li", k + " " + fmtNum(v)));
    }
    box.appendChild(ul);
    if (samples.length) {
      const d = el("details", null, "samples");
      d.appendChild(el("summary", samples.length + " sample ids"));
      const list = el("ul");
      for (const s of samples) list.appendChild(append(el("li"), el("code", s)));
      d.appendChild(list);
      box.appendChild(d);
    }
    return box;
  }

  function verdictCell(alert, verdict, reasonText) {
    const td = el("td", null, "verdict");
    if (verdict) {
      let text = verdict.verdict + " by " + verdict.reviewer + " at " + verdict.decided_at;
      if (verdict.reason) text += " (" + verdict.reason + ")";
      td.appendChild(el("div", text, "decided"));
    }
    const reason = el("input");
    reason.type = "text";
    reason.maxLength = 256;  // the contract's bound on strings
    reason.placeholder = "reason (optional)";
    reason.className = "reason";
    reason.value = reasonText || "";
    const confirm = el("button", "Confirm", "confirm");
    const dismiss = el("button", "Dismiss", "dismiss");
    confirm.type = dismiss.type = "button";
    confirm.addEventListener("click", () => decide(alert.alert_id, "confirmed", reason, [confirm, dismiss]));
    dismiss.addEventListener("click", () => decide(alert.alert_id, "dismissed", reason, [confirm, dismiss]));
    append(td, reason, el("br"), confirm, dismiss);
    return td;
  }

  function rowFor(item, reasonText) {
    const a = item.alert;
    const tr = el("tr", null, item.verdict ? item.verdict.verdict : "");
    tr.dataset.alertId = a.alert_id;
    tr.title = "alert " + a.alert_id;
    const sev = el("span", a.severity, SEVERITIES.includes(a.severity) ? "sev-" + a.severity : "");
    const win = a.window || {};
    append(tr,
      el("td", a.emitted_at),
      append(el("td"), sev),
      el("td", a.action),
      el("td", a.detector, "detector"),
      el("td", a.entity.type + ":" + a.entity.id, "entity"),
      el("td", win.start + " – " + win.end),
      append(el("td"), reasonsCell(a.reasons)),
      append(el("td"), evidenceCell(a.evidence)),
      verdictCell(a, item.verdict, reasonText));
    return tr;
  }

  let shown = null;  // the alerts last rendered, as JSON
  function render(data) {
    const tbody = document.querySelector("#alerts tbody");
    const rows = JSON.stringify(data.alerts);
    if (rows !== shown) {  // a refresh that brings nothing new leaves the rows alone
      shown = rows;
      const typed = new Map();  // reasons being written survive a refresh
      for (const tr of tbody.rows) {
        const input = tr.querySelector("input.reason");
        if (input && input.value) typed.set(tr.dataset.alertId, input.value);
      }
      tbody.replaceChildren(...data.alerts.map((item) => rowFor(item, typed.get(item.alert.alert_id))));
    }
    $("empty").hidden = data.alerts.length > 0;
    status(data.alerts.length + " alerts shown, " + data.on_board + " on this worker's board (keeps " +
      data.capacity + "); refreshed " + new Date().toLocaleTimeString());
  }

  async function refresh() {
    if (!token) return;
    const active = document.activeElement;
    if (active && active.classList.contains("reason")) return;  // do not pull the row from under the cursor
    const q = new URLSearchParams();
    if ($("entity-type").value) q.set("entity_type", $("entity-type").value);
    if ($("severity").value) q.set("severity", $("severity").value);
    try {
      render(await api("alerts?" + q.toString()));
    } catch (e) {
      if (!(e instanceof Unauthorized)) status("could not load the alerts: " + e.message, true);
    }
  }

  async function decide(alertId, verdict, reasonInput, buttons) {
    const body = { alert_id: alertId, verdict: verdict };
    const reason = reasonInput.value.trim();
    const reviewer = $("reviewer").value.trim();
    if (reason) body.reason = reason;
    if (reviewer) body.reviewer = reviewer;
    for (const b of buttons) b.disabled = true;
    try {
      await api("verdicts", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      reasonInput.value = "";
      reasonInput.blur();
      await refresh();
      status(verdict + " alert " + alertId);
    } catch (e) {
      if (!(e instanceof Unauthorized)) status("verdict not sent: " + e.message, true);
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  function start() {
    $("reviewer").value = localStorage.getItem(REVIEWER_KEY) || "";
    $("reviewer").addEventListener("change", () => localStorage.setItem(REVIEWER_KEY, $("reviewer").value.trim()));
    $("filters").addEventListener("submit", (e) => e.preventDefault());
    $("entity-type").addEventListener("change", refresh);
    $("severity").addEventListener("change", refresh);
    $("login").addEventListener("submit", (e) => {
      e.preventDefault();
      token = $("token-input").value.trim();
      $("token-input").value = "";
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      $("login").hidden = true;
      refresh();
    });
    takeToken();
    if (token) refresh();
    else askToken("This console needs its token.");
    window.setInterval(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
