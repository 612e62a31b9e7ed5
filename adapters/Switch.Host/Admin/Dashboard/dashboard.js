// The operator dashboard: plain JavaScript over the admin JSON API (POST /api/v1/{Method}, proto JSON, the operator
// key in x-operator-key). Every change goes through a confirm step and carries a reason; the switch journals it.
"use strict";

(() => {
  const KEY_STORAGE = "switch.operatorKey";
  const TOTAL_BPS = 10000;
  const STEP_BPS = 100;              // the sliders' step
  const BANKS_POLL_MS = 2000;
  const HISTORY_POLL_MS = 1000;
  const HISTORY_RECENT_SECONDS = 10;        // each poll re-reads the last seconds: late answers still land in them
  const ALERTS_POLL_MS = 5000;
  const AUDIT_POLL_MS = 2000;
  const MEMBERS_POLL_MS = 5000;
  const HISTORY_SPAN_MS = 15 * 60 * 1000;   // the charts show the last 15 minutes (what the switch keeps)
  const HISTORY_MAX_POINTS = 960;           // one per second with room for jitter; a hard bound on memory
  const AUDIT_MAX_ROWS = 200;
  const AUDIT_PAGE = 1000;                  // the API's maximum page
  const AUDIT_MAX_PAGES = 100;              // a bound on the catch-up at log in
  const STATE_NAMES = {
    ENDPOINT_ADMIN_STATE_UP: "up", ENDPOINT_ADMIN_STATE_DRAINING: "draining", ENDPOINT_ADMIN_STATE_DOWN: "down",
  };
  const BREAKER_NAMES = { BREAKER_STATE_CLOSED: "closed", BREAKER_STATE_OPEN: "open", BREAKER_STATE_HALF_OPEN: "half-open" };

  const $ = id => document.getElementById(id);
  const role = (root, name) => root.querySelector(`[data-role="${name}"]`);

  let operatorKey = null;
  let canOperate = false;
  let generation = 0;                       // bumps on log in/out: stale pollers stop
  let lastAuditNo = 0;
  const cards = new Map();                  // bank code -> card state
  const history = new Map();                // bank code -> { total, endpoints: name -> series }; series = { throughput, success, p99 } arrays of [timeMs, value]
  const ENDPOINT_COLORS = ["#8250df", "#bf3989", "#1b7c83", "#9a6700", "#6e7781", "#cf222e"];
  let historyLoaded = false;                // the first read after log in takes the whole 15 minutes

  // ---- the API

  class ApiError extends Error {
    constructor(status, code, message, primary) {
      super(`${code}: ${message}`);
      this.status = status;
      this.code = code;
      this.primary = primary || null;   // a standby names the primary's admin address (NOT_PRIMARY)
    }
  }

  async function api(method, body) {
    let response;
    try {
      response = await fetch("/api/v1/" + method, {
        method: "POST",
        headers: { "content-type": "application/json", "x-operator-key": operatorKey },
        body: JSON.stringify(body || {}),
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError(0, "UNAVAILABLE", "cannot reach the switch (" + e.message + ")");
    }
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : {}; } catch { json = null; }
    if (!response.ok) {
      throw new ApiError(response.status, (json && json.code) || "HTTP_" + response.status, (json && json.message) || text || response.statusText,
        json && json.primary);
    }
    if (json === null) throw new ApiError(response.status, "INTERNAL", "the reply is not JSON");
    return json;
  }

  // Proto JSON leaves out default values and writes int64 as strings: read every field through these.
  const num = v => (v === undefined || v === null ? 0 : Number(v));
  const pct = share => (num(share) * 100).toFixed(2) + "%";
  const bpsPct = bps => (num(bps) / 100).toFixed(2) + "%";
  const answered = w => num(w.succeeded) + num(w.failed) + num(w.timedOut);
  const clock = ms => new Date(ms).toISOString().substring(11, 19);

  // ---- log in and out

  async function logIn(key) {
    operatorKey = key;
    const me = await api("WhoAmI", {});
    sessionStorage.setItem(KEY_STORAGE, key);
    canOperate = me.role === "OPERATOR_ROLE_OPERATE";
    $("whoami").textContent = me.operatorId || "?";
    $("role").textContent = canOperate ? "operate" : "read only";
    $("role").className = "badge " + (canOperate ? "ok" : "warn");
    document.body.classList.toggle("readonly", !canOperate);
    $("who").hidden = false;
    $("login").hidden = true;
    $("app").hidden = false;
    const mine = ++generation;
    lastAuditNo = 0;
    $("audit").textContent = "";
    poll(mine, refreshMembers, MEMBERS_POLL_MS);
    // A bank's or institution's key sees its member figures only: the rest would be refused.
    if (me.scopeBank || me.scopeInstitution) return;
    poll(mine, refreshBanks, BANKS_POLL_MS);
    historyLoaded = false;
    poll(mine, refreshHistory, HISTORY_POLL_MS);
    poll(mine, refreshAlerts, ALERTS_POLL_MS);
    poll(mine, refreshAudit, AUDIT_POLL_MS);
  }

  // An error's text; on a standby, followed by a link to the primary's dashboard.
  function showError(el, e) {
    el.textContent = e ? e.message || String(e) : "";
    if (!e || !e.primary) return;
    const link = document.createElement("a");
    link.id = el.id + "-primary";
    link.href = new URL("/", e.primary).toString();
    link.textContent = "open the primary's dashboard";
    el.append(" — ", link);
  }

  function logOut(message) {
    generation++;
    operatorKey = null;
    sessionStorage.removeItem(KEY_STORAGE);
    cards.clear();
    history.clear();
    $("banks").textContent = "";
    $("who").hidden = true;
    $("app").hidden = true;
    $("login").hidden = false;
    if (message instanceof Error) showError($("login-error"), message);
    else $("login-error").textContent = message || "";
    $("operator-key").value = "";
    $("operator-key").focus();
  }

  // One loop per kind of data; the next round starts after this one ends, so a slow switch never piles up requests.
  function poll(mine, refresh, intervalMs) {
    const round = async () => {
      if (mine !== generation) return;
      try {
        await refresh();
        showGlobalError("");
      } catch (e) {
        if (mine !== generation) return;
        if (e.status === 401) { logOut("Your key was refused: " + e.message); return; }
        showGlobalError(e);
      }
      if (mine === generation) setTimeout(round, intervalMs);
    };
    round();
  }

  function showGlobalError(e) {
    const el = $("global-error");
    showError(el, e);
    el.hidden = !e;
  }

  // ---- bank cards

  async function refreshBanks() {
    const reply = await api("ListBanks", {});
    for (const view of reply.banks || []) {
      let card = cards.get(view.bank);
      if (!card) {
        card = createCard(view.bank);
        drawCharts(view.bank); // history read before the card existed shows at once
      }
      renderCard(card, view);
    }
  }

  function createCard(code) {
    const el = $("bank-card").content.firstElementChild.cloneNode(true);
    el.dataset.bank = code;
    el.id = "bank-" + code;
    const card = { code, el, view: null, names: [], proposed: null, pending: null };
    role(el, "reason").addEventListener("input", () => updateControls(card));
    role(el, "ramp-steps").addEventListener("input", () => updateControls(card));
    role(el, "ramp-minutes").addEventListener("input", () => updateControls(card));
    role(el, "confirm").addEventListener("click", () => askWeights(card));
    role(el, "reset").addEventListener("click", () => { card.proposed = null; renderCard(card, card.view); });
    role(el, "apply").addEventListener("click", () => apply(card));
    role(el, "cancel").addEventListener("click", () => closeConfirm(card));
    cards.set(code, card);
    const all = [...cards.keys()].sort();
    const before = all[all.indexOf(code) + 1];
    $("banks").insertBefore(el, before ? cards.get(before).el : null);
    return card;
  }

  function buildRows(card, endpoints) {
    const body = role(card.el, "endpoints");
    body.textContent = "";
    card.names = endpoints.map(e => e.name);
    for (const e of endpoints) {
      const row = $("endpoint-row").content.firstElementChild.cloneNode(true);
      row.dataset.endpoint = e.name;
      role(row, "endpoint-name").textContent = e.name;
      const slider = role(row, "weight");
      slider.dataset.bank = card.code;
      slider.dataset.endpoint = e.name;
      slider.id = `weight-${card.code}-${e.name}`;
      slider.setAttribute("aria-label", `weight of endpoint ${e.name} of bank ${card.code}`);
      slider.addEventListener("input", () => slide(card, e.name, Number(slider.value)));
      slider.addEventListener("change", () => slide(card, e.name, Number(slider.value)));
      for (const button of row.querySelectorAll('[data-role="state"]')) {
        button.dataset.bank = card.code;
        button.dataset.endpoint = e.name;
        button.addEventListener("click", () => askState(card, e.name, button.dataset.state));
      }
      body.appendChild(row);
    }
  }

  function renderCard(card, view) {
    card.view = view;
    const endpoints = view.endpoints || [];
    if (endpoints.map(e => e.name).join("\n") !== card.names.join("\n")) {
      card.proposed = null;
      buildRows(card, endpoints);
    }
    role(card.el, "bank-code").textContent = view.bank;
    role(card.el, "bank-name").textContent = view.name || "";
    const w = view.last10s || {};
    role(card.el, "bank-figures").textContent =
      `last 10 s: ${num(w.requestsPerSecond).toFixed(1)} req/s · ` +
      `${answered(w) ? pct(w.successRate) : "–"} ok · p99 ${w.p99LatencyUs ? (num(w.p99LatencyUs) / 1000).toFixed(1) + " ms" : "–"}`;
    const ramp = role(card.el, "ramp");
    ramp.hidden = !view.ramp;
    if (view.ramp) {
      const r = view.ramp;
      const move = card.names.map((n, i) => `${n} ${bpsPct((r.fromWeightsBps || [])[i])} → ${bpsPct((r.targetWeightsBps || [])[i])}`).join(", ");
      ramp.textContent = `Ramp by ${r.operatorId || "?"}: ${move}; step ${num(r.stepsDone)} of ${num(r.stepsTotal)}` +
        (num(r.nextStepUnixMs) ? `, next at ${clock(num(r.nextStepUnixMs))} UTC` : "");
    }
    for (const e of endpoints) {
      const row = card.el.querySelector(`tr[data-endpoint="${CSS.escape(e.name)}"]`);
      const state = e.state || "ENDPOINT_ADMIN_STATE_UNSPECIFIED";
      row.dataset.state = STATE_NAMES[state] || "?";
      row.dataset.weightBps = String(num(e.weightBps));
      role(row, "weight-now").textContent = card.proposed ? `now ${bpsPct(e.weightBps)}` : "";
      for (const button of row.querySelectorAll('[data-role="state"]')) button.classList.toggle("on", button.dataset.state === state);
      badge(role(row, "reachable"), e.reachable ? "reachable" : "unreachable", e.reachable ? "ok" : "bad");
      const breaker = e.breaker || "BREAKER_STATE_UNSPECIFIED";
      badge(role(row, "breaker"), "breaker " + (BREAKER_NAMES[breaker] || "?"),
        breaker === "BREAKER_STATE_OPEN" ? "bad" : breaker === "BREAKER_STATE_HALF_OPEN" ? "warn" : "ok");
      const s = e.last10s || {};
      role(row, "in-flight").textContent = String(num(e.inFlight));
      role(row, "rps").textContent = num(s.requestsPerSecond).toFixed(1);
      role(row, "success").textContent = answered(s) ? pct(s.successRate) : "–";
      role(row, "p99").textContent = s.p99LatencyUs ? (num(s.p99LatencyUs) / 1000).toFixed(1) + " ms" : "–";
    }
    updateControls(card);
  }

  function badge(el, text, kind) {
    el.textContent = text;
    el.className = "badge " + kind;
  }

  const currentWeights = card => Object.fromEntries((card.view.endpoints || []).map(e => [e.name, num(e.weightBps)]));
  const shown = card => card.proposed || currentWeights(card);
  const sumOf = weights => Object.values(weights).reduce((a, b) => a + b, 0);

  // Moving one slider gives the rest to the others in proportion to their proposed weights (equally when they all
  // stand at 0), in whole slider steps with the largest remainders rounded up, so the sum stays exactly 10,000.
  function slide(card, name, valueBps) {
    const before = shown(card);
    const others = card.names.filter(n => n !== name);
    const proposed = { [name]: valueBps };
    const units = Math.round((TOTAL_BPS - valueBps) / STEP_BPS);
    const base = others.reduce((s, n) => s + before[n], 0);
    const raw = others.map(n => (base > 0 ? units * before[n] / base : units / others.length));
    const whole = raw.map(Math.floor);
    let left = units - whole.reduce((a, b) => a + b, 0);
    const order = raw.map((r, i) => [r - whole[i], i]).sort((a, b) => b[0] - a[0]);
    for (const [, i] of order) { if (left <= 0) break; whole[i]++; left--; }
    others.forEach((n, i) => { proposed[n] = whole[i] * STEP_BPS; });
    card.proposed = proposed;
    role(card.el, "status").textContent = "";
    renderCard(card, card.view);
  }

  function isDirty(card) {
    if (!card.proposed) return false;
    const now = currentWeights(card);
    return card.names.some(n => card.proposed[n] !== now[n]);
  }

  function rampRequest(card) {
    const steps = Number(role(card.el, "ramp-steps").value || 0);
    const minutes = Number(role(card.el, "ramp-minutes").value || 0);
    if (!Number.isInteger(steps) || steps < 0 || steps > 100) return { error: "ramp steps: 0 (at once) to 100" };
    if (steps === 0) return { steps: 0, durationMs: 0 };
    if (!(minutes > 0) || minutes > 1440) return { error: "a ramp needs a duration above 0 and at most 1440 minutes" };
    return { steps, durationMs: Math.round(minutes * 60000) };
  }

  function updateControls(card) {
    const el = card.el;
    const weights = shown(card);
    const sum = sumOf(weights);
    const dirty = isDirty(card);
    el.classList.toggle("dirty", dirty);
    for (const name of card.names) {
      const row = el.querySelector(`tr[data-endpoint="${CSS.escape(name)}"]`);
      const slider = role(row, "weight");
      if (document.activeElement !== slider || !card.proposed) slider.value = String(weights[name]);
      slider.disabled = !canOperate;
      role(row, "weight-proposed").textContent = bpsPct(weights[name]);
      for (const button of row.querySelectorAll('[data-role="state"]')) button.disabled = !canOperate;
    }
    const sumEl = role(el, "weight-sum");
    sumEl.textContent = `sum ${bpsPct(sum)} (${sum} bps)`;
    sumEl.classList.toggle("bad", sum !== TOTAL_BPS);
    const reason = role(el, "reason");
    reason.disabled = !canOperate;
    role(el, "ramp-steps").disabled = !canOperate;
    role(el, "ramp-minutes").disabled = !canOperate;
    const ramp = rampRequest(card);
    const confirm = role(el, "confirm");
    confirm.disabled = !(canOperate && dirty && sum === TOTAL_BPS && reason.value.trim() !== "" && !ramp.error);
    confirm.title = !canOperate ? "read-only operator" : sum !== TOTAL_BPS ? "the weights must sum to 10,000 bps"
      : reason.value.trim() === "" ? "give a reason" : ramp.error || "";
    role(el, "reset").disabled = !card.proposed;
  }

  function askWeights(card) {
    const ramp = rampRequest(card);
    const reason = role(card.el, "reason").value.trim();
    if (!isDirty(card) || ramp.error || !reason) return;
    const now = currentWeights(card);
    const lines = card.names.map(n => `${n}: ${bpsPct(now[n])} → ${bpsPct(card.proposed[n])}`);
    const how = ramp.steps ? `as a ramp of ${ramp.steps} steps over ${(ramp.durationMs / 60000).toFixed(1)} min` : "at once";
    const request = { bank: card.code, byEndpoint: { ...card.proposed }, reason, rampSteps: ramp.steps, rampDurationMs: String(ramp.durationMs) };
    openConfirm(card, `Set the weights of bank ${card.code} ${how}:\n${lines.join("\n")}\nReason: ${reason}`,
      { method: "SetWeights", request, weights: true });
  }

  function askState(card, endpoint, state) {
    const reason = role(card.el, "reason").value.trim();
    if (!canOperate) return;
    if (!reason) {
      role(card.el, "error").textContent = "Give a reason first (it goes into the audit log).";
      role(card.el, "reason").focus();
      return;
    }
    openConfirm(card, `Set endpoint ${endpoint} of bank ${card.code} to ${STATE_NAMES[state]}.\nReason: ${reason}`,
      { method: "SetEndpointState", request: { bank: card.code, endpoint, state, reason }, weights: false });
  }

  function openConfirm(card, text, pending) {
    card.pending = pending;
    role(card.el, "error").textContent = "";
    role(card.el, "confirm-text").textContent = text;
    role(card.el, "confirm-panel").hidden = false;
    role(card.el, "apply").disabled = false;
  }

  function closeConfirm(card) {
    card.pending = null;
    role(card.el, "confirm-panel").hidden = true;
  }

  async function apply(card) {
    const pending = card.pending;
    if (!pending) return;
    role(card.el, "apply").disabled = true;
    try {
      const reply = await api(pending.method, pending.request);
      closeConfirm(card);
      if (pending.weights) card.proposed = null;
      role(card.el, "reason").value = "";
      role(card.el, "error").textContent = "";
      role(card.el, "status").textContent = `Applied: audit #${num(reply.auditNo)}.`;
      if (reply.bank) renderCard(card, reply.bank);
      refreshAudit().catch(() => {});
    } catch (e) {
      closeConfirm(card);
      role(card.el, "status").textContent = "";
      role(card.el, "error").textContent = e.message;
    }
  }

  // ---- live figures and charts

  // The switch keeps a second-by-second ring of the last 15 minutes: the first read after log in draws all of it at
  // once (an operator opening the page mid-incident sees what led there); later reads take only the latest seconds.
  async function refreshHistory() {
    const reply = await api("GetHistory", historyLoaded ? { seconds: HISTORY_RECENT_SECONDS } : {});
    historyLoaded = true;
    const fromMs = num(reply.fromUnixSecond) * 1000;
    const seconds = num(reply.seconds);
    for (const bank of reply.banks || []) {
      let h = history.get(bank.bank);
      if (!h) history.set(bank.bank, h = { total: emptySeries(), endpoints: new Map() });
      mergeSeries(h.total, bank.total || {}, fromMs, seconds);
      for (const ep of bank.endpoints || []) {
        if (!h.endpoints.has(ep.endpoint)) h.endpoints.set(ep.endpoint, emptySeries());
        mergeSeries(h.endpoints.get(ep.endpoint), ep, fromMs, seconds);
      }
      drawCharts(bank.bank);
    }
  }

  const emptySeries = () => ({ throughput: [], success: [], p99: [] });

  // One SecondSeries of the reply into a series: requests per second, success % and p99 ms where anything was answered.
  function mergeSeries(series, t, fromMs, seconds) {
    const at = i => fromMs + i * 1000;
    const fresh = emptySeries();
    for (let i = 0; i < seconds; i++) {
      const requests = num((t.requests || [])[i]), succeeded = num((t.succeeded || [])[i]);
      const answeredNow = succeeded + num((t.failed || [])[i]) + num((t.timedOut || [])[i]);
      const p99Us = num((t.p99LatencyUs || [])[i]);
      fresh.throughput.push([at(i), requests]);
      if (answeredNow > 0) fresh.success.push([at(i), succeeded * 100 / answeredNow]);
      if (p99Us > 0) fresh.p99.push([at(i), p99Us / 1000]);
    }
    for (const name of Object.keys(fresh)) series[name] = merge(series[name], fresh[name], fromMs, fromMs + seconds * 1000);
  }

  // The bank's line, and a thin line per endpoint (its colour in the legend under the charts).
  function drawCharts(code) {
    const h = history.get(code), card = cards.get(code);
    if (!h || !card) return;
    const nowMs = Date.now();
    const names = [...h.endpoints.keys()];
    const color = i => ENDPOINT_COLORS[i % ENDPOINT_COLORS.length];
    const lines = kind => names.map((name, i) => ({ name, color: color(i), points: h.endpoints.get(name)[kind] }));
    const chart = name => card.el.querySelector(`canvas[data-chart="${name}"]`);
    Charts.draw(chart("throughput"), h.total.throughput, { spanMs: HISTORY_SPAN_MS, nowMs, color: "#1f6feb", lines: lines("throughput") });
    Charts.draw(chart("success"), h.total.success, { spanMs: HISTORY_SPAN_MS, nowMs, color: "#1a7f37", min: 0, max: 100, lines: lines("success") });
    Charts.draw(chart("p99"), h.total.p99, { spanMs: HISTORY_SPAN_MS, nowMs, color: "#b35900", lines: lines("p99") });
    const legend = role(card.el, "chart-legend");
    if (legend.dataset.names !== names.join("\n")) {
      legend.dataset.names = names.join("\n");
      legend.textContent = "";
      const item = (text, colour) => {
        const span = document.createElement("span");
        span.textContent = text;
        span.style.borderTopColor = colour;
        legend.appendChild(span);
      };
      item("bank " + code + " (thick)", "#57606a");
      names.forEach((name, i) => item(name, color(i)));
    }
  }

  // The seconds just read replace what the series had for them (a second's late answers change it); older points stay.
  function merge(series, fresh, fromMs, toMs) {
    const kept = series.filter(p => p[0] < fromMs || p[0] >= toMs);
    const all = kept.concat(fresh).sort((a, b) => a[0] - b[0]);
    const oldest = (all.length ? all[all.length - 1][0] : 0) - HISTORY_SPAN_MS;
    const recent = all.filter(p => p[0] >= oldest);
    return recent.slice(Math.max(0, recent.length - HISTORY_MAX_POINTS));
  }

  // ---- alerts

  async function refreshAlerts() {
    const reply = await api("ListAlerts", {});
    const list = $("alerts");
    list.textContent = "";
    const alerts = (reply.alerts || []).slice().sort((a, b) => (b.active === true) - (a.active === true) || num(b.sinceUnixMs) - num(a.sinceUnixMs));
    if (alerts.length === 0) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "no alerts";
      list.appendChild(li);
    }
    for (const a of alerts) {
      const li = document.createElement("li");
      li.className = a.active ? "active" : "";
      li.dataset.bank = a.bank;
      li.textContent = `${a.active ? "ACTIVE" : "cleared"} · bank ${a.bank} · ${a.kind} since ${clock(num(a.sinceUnixMs))} UTC` +
        (a.active ? "" : `, cleared ${clock(num(a.clearedUnixMs))} UTC`) +
        ` · actual ${pct(a.actualSuccessRate)} vs baseline ${pct(a.baselineSuccessRate)}, ${num(a.windowsBelow)} windows below` +
        (a.message ? ` · ${a.message}` : "");
      list.appendChild(li);
    }
  }

  // ---- member statistics (the newest day, by event time)

  // Bank "-" rows: the requests the switch refused itself, by reject code.
  function refusals(r) {
    const n = num(r.refused);
    if (n === 0) return "";
    return `${n} (` + (r.refusedByCode || []).map(c => `${c.reason}=${num(c.count)}`).join(" ") + ")";
  }

  async function refreshMembers() {
    const reply = await api("GetMemberReport", {});
    $("members-day").textContent = reply.day ? "(" + reply.day + ")" : "(no figures yet)";
    const body = $("members");
    body.textContent = "";
    for (const r of reply.rows || []) {
      const row = document.createElement("tr");
      row.dataset.member = `${r.institution}-${r.bank}`;
      const ms = us => num(us) === 0 ? "-" : (num(us) / 1000).toFixed(1);
      for (const text of [r.institution, r.bank, num(r.requests), num(r.approvals), num(r.businessDeclines), num(r.timeouts),
        num(r.systemErrors), num(r.unavailable), num(r.wentUnknown), `${num(r.reversalsSucceeded)}/${num(r.reversalsSent)}`,
        ms(r.latencyP50Us), ms(r.latencyP99Us), refusals(r)]) {
        const td = document.createElement("td");
        td.textContent = String(text);
        row.appendChild(td);
      }
      body.appendChild(row);
    }
  }

  // ---- audit log

  async function refreshAudit() {
    for (let page = 0; page < AUDIT_MAX_PAGES; page++) {
      const reply = await api("ListAudit", { afterAuditNo: String(lastAuditNo), limit: AUDIT_PAGE });
      const entries = reply.entries || [];
      for (const e of entries) {
        if (num(e.auditNo) <= lastAuditNo) continue;
        lastAuditNo = num(e.auditNo);
        addAuditRow(e);
      }
      if (entries.length < AUDIT_PAGE) return;
    }
  }

  function addAuditRow(e) {
    const body = $("audit");
    const row = document.createElement("tr");
    row.dataset.auditNo = String(num(e.auditNo));
    const names = (cards.get(e.bank) || { names: [] }).names;
    let detail = "";
    if (e.kind === "STATE") detail = STATE_NAMES[e.state] || "?";
    else if (e.kind === "REACHABILITY") detail = e.reachable ? "reachable" : "unreachable";
    else if ((e.kind || "").startsWith("BREAKER")) detail = "breaker " + (BREAKER_NAMES[e.breaker] || "?");
    else if (e.kind === "BATCH_CLOSED") detail = "batch " + num(e.batchId);
    if ((e.weightsBps || []).length) detail = e.weightsBps.map((w, i) => `${names[i] || "#" + i} ${bpsPct(w)}`).join(", ");
    if ((e.targetWeightsBps || []).length) detail += " → " + e.targetWeightsBps.map((w, i) => `${names[i] || "#" + i} ${bpsPct(w)}`).join(", ");
    const at = new Date(num(e.atUnixUs) / 1000).toISOString().replace("T", " ").substring(0, 23);
    for (const text of [String(num(e.auditNo)), at, e.operatorId || "", e.kind || "", e.bank || "", e.endpoint || "", detail, e.reason || ""]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > AUDIT_MAX_ROWS) body.deleteRow(body.rows.length - 1);
  }

  // ---- start

  $("login-form").addEventListener("submit", async event => {
    event.preventDefault();
    const key = $("operator-key").value.trim();
    if (!key) return;
    $("login-error").textContent = "";
    try {
      await logIn(key);
    } catch (e) {
      logOut(e.status === 401 ? "That key is not an operator key." : e);
    }
  });
  $("logout-button").addEventListener("click", () => logOut(""));

  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) logIn(saved).catch(e => logOut(e));
  else logOut("");
})();
