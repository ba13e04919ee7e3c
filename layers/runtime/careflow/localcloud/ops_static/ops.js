// careflow operations page: signs in (a role and a facility), then reads /v1 with that
// token like any client. Every value from the API is set as text (never as HTML).
"use strict";

const TOKEN_KEY = "careflow.ops.session";
const REFRESH_MS = 5000;
const KPI_REFRESH_MS = 30000;
const COLORS = ["#0b5cad", "#c2571a", "#1e6b34", "#7b3fa0", "#a3242a", "#00747a", "#8a5a00", "#4a5360"];

let session = null;
let timers = [];
let lastKpiAt = 0;
let refreshing = false;

// -- small helpers ------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c) node.append(c);
  return node;
}

const words = (s) => String(s).replace(/[_-]+/g, " ");
const pct = (r) => (r === null || r === undefined ? "no data" : `${Math.round(r * 1000) / 10}%`);

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function ago(minutes) {
  if (minutes < 60) return `${minutes} min`;
  if (minutes < 48 * 60) return `${Math.round(minutes / 60)} h`;
  return `${Math.round(minutes / 1440)} d`;
}

// -- the API ------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, options) {
  const headers = { Accept: "application/json" };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (options && options.body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method: (options && options.method) || "GET",
      headers,
      body: options && options.body !== undefined ? JSON.stringify(options.body) : undefined,
    });
  } catch (e) {
    throw new ApiError(0, "The local cloud does not answer: is careflow up still running?");
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const detail = (body && (body.detail || body.title)) || `HTTP ${response.status}`;
    if (response.status === 401 && session) signOut("Your sign-in ended: sign in again.");
    throw new ApiError(response.status, detail);
  }
  return body;
}

// -- sign-in ------------------------------------------------------------------------------
async function showSignIn(message) {
  $("app").hidden = true;
  $("who").hidden = true;
  $("sign-in-view").hidden = false;
  $("sign-in-error").textContent = message || "";
  let choices;
  try {
    choices = await api("/ops/sign-in");
  } catch (e) {
    $("sign-in-error").textContent = e.message;
    return;
  }
  const role = $("role");
  role.replaceChildren(...choices.roles.map((r) => el("option", { value: r.role, text: words(r.role) })));
  const facility = $("facility");
  facility.replaceChildren(
    ...choices.facilities.map((f) => el("option", { value: f.id, text: `${f.name} (${f.id})` })),
  );
  const people = () => {
    const found = choices.roles.find((r) => r.role === role.value);
    $("person").replaceChildren(
      ...(found ? found.people : []).map((p) => el("option", { value: p, text: p.replace(/^user:/, "") })),
    );
  };
  role.onchange = people;
  people();
  role.focus();
}

async function signIn(event) {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  const button = $("sign-in-submit");
  button.disabled = true;
  try {
    const answer = await api("/ops/sign-in", {
      method: "POST",
      body: { role: $("role").value, facility: $("facility").value, person: $("person").value },
    });
    session = answer;
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify(answer));
    start();
  } catch (e) {
    $("sign-in-error").textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

function signOut(message) {
  session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  timers.forEach(clearInterval);
  timers = [];
  showSignIn(message);
}

function start() {
  $("sign-in-view").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("signed-in").textContent =
    `${session.person.replace(/^user:/, "")} · ${words(session.role)} · ${session.facility_name}`;
  $("main").focus();
  refresh(true);
  timers.push(setInterval(() => refresh(false), REFRESH_MS));
}

// -- refresh ------------------------------------------------------------------------------
async function refresh(withKpis) {
  if (!session || refreshing) return;
  refreshing = true;
  const q = `facility=${encodeURIComponent(session.facility)}`;
  try {
    const [board, queues] = await Promise.all([api(`/v1/board?${q}`), api(`/v1/queues?${q}`)]);
    renderQueues(queues);
    renderBoard(board);
    await renderInbox(queues);
    if (withKpis || Date.now() - lastKpiAt > KPI_REFRESH_MS) {
      await renderKpis();
      lastKpiAt = Date.now();
    }
    $("app-error").textContent = "";
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (session) $("app-error").textContent = e.message;
  } finally {
    refreshing = false;
  }
}

// -- inbox --------------------------------------------------------------------------------
async function renderInbox(queues) {
  const mine = queues.queues.filter((row) => row.may_work);
  const lists = await Promise.all(
    mine.map((row) =>
      api(`/v1/tasks?queue=${encodeURIComponent(row.queue)}&facility=${encodeURIComponent(row.facility_id)}`),
    ),
  );
  const tasks = lists.flatMap((l) => l.items).sort(byPriority);
  const list = $("inbox-list");
  const focusedId = document.activeElement && document.activeElement.closest("[data-task-id]");
  const keep = focusedId ? focusedId.dataset.taskId : null;
  if (keep && document.activeElement.tagName !== "BUTTON") return; // do not redraw under a person typing
  list.replaceChildren(...tasks.map(taskItem));
  $("inbox-empty").hidden = tasks.length > 0;
  if (keep) {
    const again = list.querySelector(`[data-task-id="${CSS.escape(keep)}"] button`);
    if (again) again.focus();
  }
}

// The inbox's order: the task priority model's score, highest first; the tasks it did not
// score after them, earliest due first (as GET /v1/tasks orders each queue).
function byPriority(a, b) {
  if (a.prioritized !== b.prioritized) return a.prioritized ? -1 : 1;
  if (a.prioritized && a.priority !== b.priority) return b.priority - a.priority;
  if (a.due_at !== b.due_at) return a.due_at < b.due_at ? -1 : 1;
  return a.task_id < b.task_id ? -1 : 1;
}

function priorityLine(task) {
  if (!task.prioritized) return el("p", { class: "priority" }, "Priority: not scored (ordered by due time)");
  const why = task.priority_reasons.length ? `: ${task.priority_reasons.join("; ")}` : "";
  return el("p", { class: "priority" }, `Priority ${Math.round(task.priority * 100)}%${why}`);
}

function taskItem(task) {
  const overdue = new Date(task.due_at) <= new Date();
  const me = session.person;
  const mineClaimed = task.status === "CLAIMED" && task.claimed_by === me;
  const actions = el("div", { class: "actions" });
  const status = el("p", { class: "task-status", role: "status" });
  const act = async (path, body) => {
    status.textContent = "";
    try {
      await api(`/v1/tasks/${encodeURIComponent(task.task_id)}/${path}`, { method: "POST", body });
      status.textContent = path === "claim" ? "Claimed." : "Done.";
      await refresh(false);
      const next = $("inbox-list").querySelector(`[data-task-id="${CSS.escape(task.task_id)}"] button`);
      if (next) next.focus();
      else $("inbox-title").focus();
    } catch (e) {
      status.textContent = e.message;
    }
  };
  if (task.status === "OPEN") {
    actions.append(el("button", { type: "button", class: "claim", onclick: () => act("claim", {}) }, "Claim"));
  } else if (mineClaimed && task.allowed_decisions.length) {
    const id = `decision-${task.task_id}`;
    const reasonId = `reason-${task.task_id}`;
    const decision = el(
      "select",
      { id, class: "decision" },
      task.allowed_decisions.map((d) => el("option", { value: d, text: words(d).toLowerCase() })),
    );
    const reason = el("input", { id: reasonId, class: "reason", type: "text", maxlength: "500", placeholder: "why (no patient details)" });
    actions.append(
      el("label", { for: id }, "Decision"),
      decision,
      el("label", { for: reasonId, class: "sr-only" }, "Reason"),
      reason,
      el(
        "button",
        { type: "button", class: "complete", onclick: () => act("complete", { decision: decision.value, reason: reason.value }) },
        "Complete",
      ),
      el("button", { type: "button", class: "release secondary", onclick: () => act("release", {}) }, "Release"),
    );
  } else if (mineClaimed) {
    actions.append(
      el("button", { type: "button", class: "complete", onclick: () => act("acknowledge", {}) }, "Acknowledge"),
    );
  } else {
    actions.append(el("span", { class: "hint" }, `Claimed by ${String(task.claimed_by || "").replace(/^user:/, "")}`));
  }
  actions.append(
    el("button", { type: "button", class: "open secondary", onclick: () => openInstance(task.instance_id) }, "Open its instance"),
  );
  return el(
    "li",
    { class: `task${overdue ? " overdue" : ""}`, dataset: { taskId: task.task_id, queue: task.queue, instanceId: task.instance_id } },
    el("h3", {}, `${words(task.queue)} · ${words(task.workflow_id)}`),
    el(
      "p",
      { class: "meta" },
      `${overdue ? "Overdue: was due" : "Due"} ${when(task.due_at)} · ${task.status.toLowerCase()}` +
        (task.escalation_level ? ` · escalated (level ${task.escalation_level})` : "") +
        ` · task ${task.task_id}`,
    ),
    priorityLine(task),
    actions,
    status,
  );
}

// -- queues -------------------------------------------------------------------------------
function renderQueues(report) {
  const head = ["Queue", "Workflow", "Open", "Claimed", "Overdue", ...report.buckets, "Oldest", "Your role"];
  $("queues-head").replaceChildren(
    ...head.map((h, i) => el("th", { scope: "col", class: i >= 2 && i < head.length - 1 ? "num" : null }, h)),
  );
  const rows = report.queues.map((row) =>
    el(
      "tr",
      { dataset: { queue: row.queue } },
      el("th", { scope: "row" }, words(row.queue)),
      el("td", {}, row.workflow_ids.map(words).join(", ")),
      el("td", { class: "num" }, row.open),
      el("td", { class: "num" }, row.claimed),
      el("td", { class: "num" }, row.overdue),
      ...report.buckets.map((b) => el("td", { class: "num" }, row.aging[b] || 0)),
      el("td", { class: "num" }, ago(row.oldest_age_minutes)),
      el("td", {}, row.may_work ? "works it" : row.may_supervise ? "supervises it" : "—"),
    ),
  );
  $("queues-body").replaceChildren(...rows);
  $("queues-empty").hidden = rows.length > 0;
}

// -- board --------------------------------------------------------------------------------
function renderBoard(board) {
  const columns = board.workflows.map((wf) =>
    el(
      "section",
      { class: "workflow", dataset: { workflow: wf.workflow_id }, "aria-label": wf.title },
      el("h3", {}, `${wf.title}: ${wf.running} running`),
      wf.subjects_visible ? null : el("p", { class: "hint" }, "Subjects are not shown to your role."),
      wf.milestones.map((m) =>
        el(
          "div",
          { class: "milestone", dataset: { milestone: m.milestone } },
          el("h4", {}, `${words(m.milestone)} (${m.count})`),
          el(
            "ul",
            { class: "instances" },
            m.instances.map((card) =>
              el(
                "li",
                {},
                el(
                  "button",
                  {
                    type: "button",
                    class: `instance${card.overdue_tasks ? " overdue" : ""}`,
                    dataset: { instanceId: card.instance_id },
                    "aria-label": `${card.subject_id ? `${card.subject_type} ${card.subject_id}` : `instance ${card.instance_id}`}, ${words(card.status)}${card.open_tasks ? `, ${card.open_tasks} open task(s)` : ""}${card.overdue_tasks ? ", overdue" : ""}`,
                    onclick: () => (wf.subjects_visible ? openInstance(card.instance_id) : showCard(wf, card)),
                  },
                  card.subject_id || card.instance_id.slice(0, 12),
                  card.open_tasks ? ` · ${card.open_tasks} task${card.open_tasks > 1 ? "s" : ""}` : "",
                ),
              ),
            ),
          ),
        ),
      ),
    ),
  );
  $("board-workflows").replaceChildren(...columns);
}

function showDialog(title, facts, milestones, tasks) {
  $("instance-title").textContent = title;
  $("instance-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("instance-milestones").replaceChildren(...milestones.map((text) => el("li", {}, text)));
  $("instance-tasks").replaceChildren(...(tasks.length ? tasks : ["none"]).map((text) => el("li", {}, text)));
  const dialog = $("instance");
  if (!dialog.open) dialog.showModal();
  $("instance-close").focus();
}

function showCard(wf, card) {
  // a workflow the role does not work: what the board says, nothing more (need to know)
  showDialog(
    `${wf.title} · ${card.instance_id}`,
    [
      ["Status", words(card.status)],
      ["Facility", card.facility_id],
      ["Subject", "not shown to your role (only to the roles that work this workflow)"],
      ["Started", when(card.started_at)],
    ],
    [`${words(card.milestone)} · ${card.milestone_status.toLowerCase()} · ${when(card.since)}`],
    card.open_tasks ? [`${card.open_tasks} open, ${card.overdue_tasks} overdue`] : [],
  );
}

async function openInstance(id) {
  let found;
  try {
    found = await api(`/v1/instances/${encodeURIComponent(id)}`);
  } catch (e) {
    $("app-error").textContent = e.message;
    return;
  }
  const facts = [
    ["Status", words(found.status) + (found.outcome ? ` (${words(found.outcome)})` : "")],
    ["Facility", found.facility_id],
    ["Subject", `${found.subject_type} ${found.subject_id}`],
    ["Service line", found.service_line || "—"],
    ["Started", when(found.started_at)],
    ["Last change", when(found.updated_at)],
  ];
  if (found.scheduled_start) facts.push(["Scheduled", when(found.scheduled_start)]);
  showDialog(
    `${words(found.workflow_id)} · ${found.instance_id}`,
    facts,
    found.milestones.map((m) => `${words(m.name)} · ${m.status.toLowerCase()} · ${when(m.at)}`),
    found.open_tasks.map((t) => `${words(t.queue)} · ${t.status.toLowerCase()} · due ${when(t.due_at)}`),
  );
}

// -- KPIs ---------------------------------------------------------------------------------
async function renderKpis() {
  const days = Number($("kpi-window").value) || 14;
  const q = `facility=${encodeURIComponent(session.facility)}`;
  const window = days > 31 ? 31 : days;
  const [report, series] = await Promise.all([
    api(`/v1/kpis?${q}&window=P${window}D`),
    api(`/v1/kpis/series?${q}&interval=P1D&points=${days}`),
  ]);
  renderEnterprise(report.enterprise);
  renderCharts(series, report);
  renderHeatmap(report.enterprise.sla_adherence);
}

function pairs(value, prefix) {
  // numbers inside a KPI's value, as (label, number), nested keys joined
  const out = [];
  if (typeof value === "number") out.push([prefix || "value", value]);
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) out.push(...pairs(v, prefix ? `${prefix} · ${words(k)}` : words(k)));
  }
  return out;
}

function renderEnterprise(block) {
  const cards = Object.entries(block).map(([name, kpi]) => {
    const v = kpi.value;
    let shown;
    if (v === null || v === undefined) shown = "no data yet";
    else if (typeof v === "number") shown = kpi.unit === "ratio" || name === "sla_adherence" ? pct(v) : `${v} ${kpi.unit}`;
    else {
      const found = pairs(v).filter(([, n]) => n !== 0);
      shown = found.length ? found.slice(0, 3).map(([k, n]) => `${k}: ${Math.round(n * 100) / 100}`).join("; ") : "none";
    }
    return el(
      "article",
      { class: "card", dataset: { kpi: name } },
      el("h3", {}, words(name)),
      el("p", { class: typeof v === "number" || v === null || v === undefined ? "value" : "value small" }, shown),
      el("p", { class: "def" }, `${kpi.definition} (owner: ${kpi.owner})`),
    );
  });
  $("enterprise").replaceChildren(...cards);
}

function barChart({ title, labels, seriesList, max, format, kpi }) {
  // grouped-stacked bars: one bar per label, stacked by series; with a data table
  const W = 460, H = 220, left = 40, bottom = 40, top = 10;
  const n = Math.max(labels.length, 1);
  const step = (W - left - 10) / n;
  const top1 = max || Math.max(1, ...labels.map((_, i) => seriesList.reduce((s, ser) => s + (ser.values[i] || 0), 0)));
  const scale = (v) => ((H - bottom - top) * v) / top1;
  const bars = [];
  labels.forEach((label, i) => {
    let y = H - bottom;
    seriesList.forEach((ser, j) => {
      const v = ser.values[i] || 0;
      if (!v) return;
      const h = scale(v);
      y -= h;
      bars.push(svg("rect", { x: left + i * step + 2, y, width: Math.max(step - 4, 1), height: h, fill: COLORS[j % COLORS.length] }, svg("title", { text: `${label}: ${ser.name} ${format(v)}` })));
    });
    if (n <= 7 || i % Math.ceil(n / 7) === 0) {
      bars.push(svg("text", { x: left + i * step + step / 2, y: H - bottom + 14, "text-anchor": "middle", text: label }));
    }
  });
  const axis = [
    svg("line", { x1: left, y1: H - bottom, x2: W - 5, y2: H - bottom, stroke: "#888" }),
    svg("text", { x: left - 4, y: top + 8, "text-anchor": "end", text: format(top1) }),
    svg("text", { x: left - 4, y: H - bottom, "text-anchor": "end", text: "0" }),
  ];
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title }, axis, bars);
  const table = el(
    "table",
    {},
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, ""), seriesList.map((s) => el("th", { scope: "col" }, s.name)))),
    el(
      "tbody",
      {},
      labels.map((label, i) => el("tr", {}, el("th", { scope: "row" }, label), seriesList.map((s) => el("td", { class: "num" }, format(s.values[i] || 0))))),
    ),
  );
  return el(
    "figure",
    { dataset: { kpi } },
    el("figcaption", {}, title),
    chart,
    seriesList.length > 1
      ? el("ul", { class: "legend" }, seriesList.map((s, j) => el("li", {}, el("i", { class: `c${j % 8}`, "aria-hidden": "true" }), s.name)))
      : null,
    el("details", {}, el("summary", {}, "The numbers"), table),
  );
}

function renderCharts(series, report) {
  const labels = series.points.map((p) => new Date(p.until).toLocaleDateString(undefined, { month: "short", day: "numeric" }));
  const started = series.workflow_ids
    .map((w) => ({ name: words(w), values: series.points.map((p) => p.started[w] || 0) }))
    .filter((s) => s.values.some((v) => v));
  const ended = series.workflow_ids
    .map((w) => ({ name: words(w), values: series.points.map((p) => p.ended[w] || 0) }))
    .filter((s) => s.values.some((v) => v));
  const charts = [
    barChart({ title: "Instances started per day, by workflow", labels, seriesList: started.length ? started : [{ name: "started", values: [] }], format: (v) => String(v), kpi: "started" }),
    barChart({ title: "Instances ended per day, by workflow", labels, seriesList: ended.length ? ended : [{ name: "ended", values: [] }], format: (v) => String(v), kpi: "ended" }),
    barChart({
      title: "SLA adherence per day (tasks due that day)",
      labels,
      seriesList: [{ name: "SLA adherence", values: series.points.map((p) => (p.sla_adherence === null ? 0 : p.sla_adherence)) }],
      max: 1,
      format: pct,
      kpi: "sla_adherence_series",
    }),
    barChart({ title: "Human tasks opened per day", labels, seriesList: [{ name: "tasks opened", values: series.points.map((p) => p.tasks_opened) }], format: (v) => String(v), kpi: "tasks_opened" }),
  ];
  for (const [name, kpi] of Object.entries(report.enterprise)) {
    if (name === "sla_adherence" || !kpi.value || typeof kpi.value !== "object") continue;
    const found = pairs(kpi.value).slice(0, 16);
    if (!found.length) continue;
    charts.push(
      barChart({
        title: `${words(name)} (now, ${kpi.unit})`,
        labels: found.map(([k]) => k.length > 14 ? `${k.slice(0, 13)}…` : k),
        seriesList: [{ name: words(name), values: found.map(([, v]) => v) }],
        format: (v) => String(Math.round(v * 100) / 100),
        kpi: name,
      }),
    );
  }
  $("charts").replaceChildren(...charts);
}

function renderHeatmap(sla) {
  const grid = sla.by_facility_service_line || null;
  const head = $("heatmap-head");
  const body = $("heatmap-body");
  if (grid && Object.keys(grid).length) {
    const lines = [...new Set(Object.values(grid).flatMap((row) => Object.keys(row)))].sort();
    head.replaceChildren(el("th", { scope: "col" }, "Facility"), ...lines.map((l) => el("th", { scope: "col" }, l === "none" ? "no service line" : words(l))));
    body.replaceChildren(
      ...Object.entries(grid).map(([facility, row]) =>
        el("tr", { dataset: { facility } }, el("th", { scope: "row" }, facility), ...lines.map((l) => heatCell(row[l]))),
      ),
    );
    return;
  }
  const byFacility = sla.by_facility || {};
  head.replaceChildren(el("th", { scope: "col" }, "Facility"), el("th", { scope: "col" }, "all work"));
  body.replaceChildren(
    ...Object.entries(byFacility).map(([facility, r]) =>
      el("tr", { dataset: { facility } }, el("th", { scope: "row" }, facility), heatCell(r === null ? null : { ratio: r })),
    ),
  );
}

function heatCell(cell) {
  if (!cell || cell.ratio === null || cell.ratio === undefined) return el("td", { class: "heat-none" }, "no tasks");
  const r = cell.ratio;
  const level = r < 0.8 ? "bad" : r < 0.95 ? "warn" : "good";
  const counts = cell.met !== undefined ? ` (${cell.met} met, ${cell.missed} missed)` : "";
  const word = { bad: "below 80%", warn: "below 95%", good: "on target" }[level];
  return el("td", { class: `num heat-${level}`, title: word }, `${pct(r)}${counts}`, el("span", { class: "sr-only" }, `, ${word}`));
}

// -- start --------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("kpi-window").addEventListener("change", () => renderKpis().catch((e) => ($("app-error").textContent = e.message)));
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    try {
      session = JSON.parse(saved);
      start();
      return;
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  showSignIn("");
});
