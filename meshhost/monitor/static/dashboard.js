// meshhost dashboard: renders the lattice state pushed by /api/stream (server-sent events).
// Plain DOM, no framework, no build step.  Every text from the lattice goes in with
// textContent (never innerHTML): labels and names are other people's input.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const STATE_ORDER = { alive: 0, suspect: 1, dead: 2, left: 3 };
const MAX_EVENTS = 200;
let latest = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const short = (id) => (id || "").slice(0, 12);
const fixed = (x, d) => (Number.isFinite(x) ? x.toFixed(d) : "–");

function actorName(state, id) {
  return (state.actor_names && state.actor_names[id]) || short(id);
}

function renderSummary(state) {
  const counts = { alive: 0, suspect: 0, dead: 0, left: 0 };
  let instances = 0, rate = 0;
  for (const h of state.hosts) {
    counts[h.state] = (counts[h.state] || 0) + 1;
    for (const a of h.actors) { instances += a.instances; rate += a.calls_per_s; }
  }
  const stat = (value, label, id) => el("div", { class: "stat", id }, el("b", {}, value),
                                        el("span", {}, label));
  document.getElementById("summary").replaceChildren(
    stat(state.hosts.length, "hosts", "stat-hosts"),
    stat(counts.alive, "alive", "stat-alive"),
    stat(counts.suspect, "suspect", "stat-suspect"),
    stat(counts.dead + counts.left, "dead or left", "stat-dead"),
    stat(instances, "actor instances", "stat-instances"),
    stat(fixed(rate, 1), "calls/s", "stat-rate"),
    stat(state.apps.length, "applications", "stat-apps"),
    stat(state.links.length, "links", "stat-links"),
  );
}

// The worst state one of a pair reports about the other (null: neither could be asked).
function edgeState(a, b) {
  const seen = [];
  if (a.view && a.view[b.id]) seen.push(a.view[b.id]);
  if (b.view && b.view[a.id]) seen.push(b.view[a.id]);
  if (!seen.length) return null;
  return seen.sort((x, y) => (STATE_ORDER[y] ?? 9) - (STATE_ORDER[x] ?? 9))[0];
}

function renderGraph(state) {
  const g = document.getElementById("graph");
  const hosts = [...state.hosts].sort((a, b) => a.id.localeCompare(b.id));
  // Everything inside the 640x370 viewBox: a ring whose top halo and bottom label fit,
  // nodes no wider than their share of it, labels shortened as the ring fills up.
  // Up to 6 hosts each node has a line under it (instances, address); more get a wider
  // ring and smaller nodes instead (the node's title still tells it all).
  const count = hosts.length, labelled = count <= 6, cx = 320;
  const cy = labelled ? 180 : 185, r = count < 2 ? 0 : labelled ? 120 : 140;
  const share = count > 1 ? r * Math.sin(Math.PI / count) : 40;
  const nodeR = Math.max(12, Math.min(labelled ? 40 : 30, Math.floor(share) - 6));
  const pos = new Map(hosts.map((h, i) => {
    const t = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, hosts.length);
    return [h.id, [cx + r * Math.cos(t), cy + r * Math.sin(t)]];
  }));
  const edges = svg("g", { class: "edges" });
  for (let i = 0; i < hosts.length; i++) {
    for (let j = i + 1; j < hosts.length; j++) {
      const s = edgeState(hosts[i], hosts[j]);
      if (!s || s === "left") continue;
      const kind = s === "alive" ? "ok" : s === "suspect" ? "warn" : "bad";
      const [x1, y1] = pos.get(hosts[i].id), [x2, y2] = pos.get(hosts[j].id);
      const line = svg("line", { class: `edge ${kind}`, x1, y1, x2, y2,
                                 "data-pair": `${hosts[i].id} ${hosts[j].id}`, "data-state": s });
      line.append(svg("title", {}, `${short(hosts[i].id)} ↔ ${short(hosts[j].id)}: ${s}`));
      edges.append(line);
    }
  }
  const nodes = svg("g", { class: "nodes" });
  for (const h of hosts) {
    const [x, y] = pos.get(h.id);
    const n = h.actors.reduce((sum, a) => sum + a.instances, 0);
    const node = svg("g", { class: `node ${h.state}${h.local ? " local" : ""}`,
                            "data-host-id": h.id, "data-state": h.state,
                            transform: `translate(${x},${y})` });
    if (h.local) node.append(svg("circle", { class: "halo", r: nodeR + 6 }));
    node.append(svg("circle", { class: "body", r: nodeR }));
    node.append(svg("text", { class: "name", y: nodeR >= 30 ? -1 : 4 },
                    short(h.id).slice(0, nodeR >= 30 ? 8 : 4)));
    if (nodeR >= 30) node.append(svg("text", { class: "sub", y: 15 }, h.state));
    if (labelled) {
      node.append(svg("text", { class: "sub", y: nodeR + 22 },
                      `${n} instance${n === 1 ? "" : "s"} · ${h.address}`));
    }
    node.append(svg("title", {}, `${h.id}\n${h.state}, ${h.address}, ${n} instance${n === 1 ? "" : "s"}`));
    nodes.append(node);
  }
  g.replaceChildren(edges, nodes);
  document.getElementById("graph-observer").textContent = short(state.served_by);
}

function renderMatrix(state) {
  const hosts = [...state.hosts].sort((a, b) => a.id.localeCompare(b.id));
  const head = el("tr", {}, el("th", {}, "observer ↓ sees →"),
                  hosts.map((h) => el("th", { title: h.id }, short(h.id).slice(0, 8))));
  const rows = hosts.map((obs) => el("tr", { "data-observer": obs.id },
    el("th", { title: obs.id }, short(obs.id).slice(0, 8)),
    hosts.map((h) => {
      if (h.id === obs.id) return el("td", { class: "cell self" }, "·");
      const s = obs.view ? obs.view[h.id] : null;
      return el("td", { class: `cell ${s || ""}`, title: obs.view ? (s || "unknown") :
                        "this host did not answer" }, s ? s : obs.view ? "?" : "–");
    })));
  document.getElementById("matrix").replaceChildren(
    el("table", { class: "matrix" }, el("thead", {}, head), el("tbody", {}, rows)),
    el("p", { class: "muted small" }, "Each row is one host's own membership view, asked over ",
       "the lattice. – : that host did not answer (dead, left or unreachable); ",
       "? : it does not know the member."));
}

function renderHosts(state) {
  const hosts = [...state.hosts].sort((a, b) =>
    (STATE_ORDER[a.state] - STATE_ORDER[b.state]) || a.id.localeCompare(b.id));
  const cards = hosts.map((h) => {
    const labels = Object.entries(h.labels || {}).map(([k, v]) => el("span", { class: "chip on" },
                                                                        `${k}=${v}`));
    let body;
    if (h.actors.length) {
      body = el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "actor"), el("th", { class: "num" }, "inst."),
          el("th", { class: "num" }, "calls/s"), el("th", { class: "num" }, "p50 ms"),
          el("th", { class: "num" }, "p99 ms"), el("th", { class: "num" }, "errors/s"))),
        el("tbody", {}, h.actors.map((a) => el("tr", { "data-actor-id": a.id },
          el("td", { title: `${a.name || ""}\n${a.id}` }, a.name || short(a.id)),
          el("td", { class: "num" }, a.instances),
          el("td", { class: "num" }, fixed(a.calls_per_s, 2)),
          el("td", { class: "num" }, a.calls_total ? fixed(a.p50_ms, 2) : "–"),
          el("td", { class: "num" }, a.calls_total ? fixed(a.p99_ms, 2) : "–"),
          el("td", { class: "num" }, fixed(a.errors_per_s, 2))))));
    } else {
      body = el("div", { class: "empty" },
                h.state === "dead" || h.state === "left" ? "gone: its actors run elsewhere"
                                                         : "no actors");
    }
    return el("div", { class: "host", "data-host-id": h.id, "data-state": h.state },
      el("div", { class: "head" },
        el("span", { class: "id mono", title: h.id }, short(h.id)),
        el("span", { class: `badge ${h.state}` }, h.state)),
      el("div", { class: "muted small" }, h.address,
         h.local ? " · serving this page" : "",
         h.reachable ? "" : h.state === "alive" || h.state === "suspect" ? " · not answering" : ""),
      labels.length ? el("div", { class: "chips" }, labels) : null,
      body);
  });
  document.getElementById("hosts").replaceChildren(...cards);
}

function renderApps(state) {
  const box = document.getElementById("apps");
  if (!state.apps.length) { box.replaceChildren(el("div", { class: "empty" }, "no applications deployed")); return; }
  const rows = [];
  for (const app of state.apps) {
    const byComponent = new Map();
    for (const p of app.placement) {
      if (!byComponent.has(p.component)) byComponent.set(p.component, []);
      byComponent.get(p.component).push(p);
    }
    const components = [...byComponent.entries()];
    if (!components.length) components.push(["–", []]);
    components.forEach(([component, places], i) => {
      rows.push(el("tr", { "data-app": app.name },
        i === 0 ? el("td", { rowspan: components.length }, el("b", {}, app.name),
                     el("div", { class: "muted small" }, app.version || "")) : null,
        i === 0 ? el("td", { rowspan: components.length }, app.state || "–") : null,
        el("td", {}, component),
        el("td", {}, el("div", { class: "chips" }, places.map((p) =>
          el("span", { class: `chip${p.running ? " on" : ""}`, "data-host-id": p.host,
                       title: p.host }, `${short(p.host).slice(0, 8)} ${p.running}/${p.desired}`))))));
    });
    for (const problem of app.problems) {
      rows.push(el("tr", {}, el("td", { colspan: 4, class: "problem" }, "⚠ " + problem)));
    }
  }
  box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "app"),
    el("th", {}, "state"), el("th", {}, "component"), el("th", {}, "hosts: running/desired"))),
    el("tbody", {}, rows)));
}

function renderLinks(state) {
  const box = document.getElementById("links");
  if (!state.links.length) { box.replaceChildren(el("div", { class: "empty" }, "no links")); return; }
  box.replaceChildren(el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "actor"), el("th", {}, "contract or target"),
                       el("th", {}, "name"))),
    el("tbody", {}, state.links.map((l) => el("tr", {},
      el("td", { title: `${actorName(state, l.actor)}\n${l.actor}` }, actorName(state, l.actor)),
      el("td", { title: l.contract }, l.contract.startsWith("M") && l.contract.length === 56
                                        ? actorName(state, l.contract) : l.contract),
      el("td", { title: l.link_name }, l.link_name))))));
}

function eventText(e) {
  const skip = new Set(["kind", "at_unix_ms"]);
  return Object.entries(e).filter(([k]) => !skip.has(k)).map(([k, v]) => {
    const text = typeof v === "string" && v.length === 56 ? short(v) : String(v);
    return `${k}=${text}`;
  }).join("  ");
}

function eventItem(e, fresh) {
  const t = new Date(e.at_unix_ms || Date.now());
  return el("li", { class: fresh ? "fresh" : "", "data-kind": e.kind },
    el("span", { class: "muted mono" }, t.toLocaleTimeString()),
    el("span", { class: `kind ${e.kind}` }, e.kind),
    el("span", { class: "mono" }, eventText(e)));
}

function addEvent(e, fresh) {
  const list = document.getElementById("events");
  list.prepend(eventItem(e, fresh));
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

function render(state) {
  latest = state;
  document.getElementById("lattice").textContent = state.lattice;
  document.getElementById("served-by").textContent = short(state.served_by);
  document.getElementById("updated").textContent = new Date().toLocaleTimeString();
  renderSummary(state);
  renderGraph(state);
  renderMatrix(state);
  renderHosts(state);
  renderApps(state);
  renderLinks(state);
  document.body.dataset.hosts = String(state.hosts.length);
}

// The host pings every 15 s when it has nothing else to say; a host that stopped
// answering (hung, SIGSTOP, cut off) keeps the connection open but silent, so the
// page would say "live" for ever: after this long without a word it says so and
// opens a new stream.
const SILENT_MS = 37500;
let source = null, lastHeard = 0;

function connect() {
  const conn = document.getElementById("conn");
  const setConn = (s, text) => { conn.dataset.state = s; conn.querySelector("b").textContent = text; };
  const heard = () => { lastHeard = Date.now(); };
  if (source) source.close();
  heard();
  source = new EventSource("/api/stream");
  source.addEventListener("open", () => { heard(); setConn("live", "live"); });
  source.addEventListener("error", () => setConn("lost", "reconnecting…"));
  source.addEventListener("ping", heard);
  source.addEventListener("state", (m) => { heard(); render(JSON.parse(m.data)); });
  source.addEventListener("events", (m) => {
    heard();
    document.getElementById("events").replaceChildren();
    for (const e of JSON.parse(m.data)) addEvent(e, false);
  });
  source.addEventListener("lattice", (m) => { heard(); addEvent(JSON.parse(m.data), true); });
}

setInterval(() => {
  if (source && Date.now() - lastHeard > SILENT_MS) {
    const conn = document.getElementById("conn");
    conn.dataset.state = "lost";
    conn.querySelector("b").textContent = "host silent, reconnecting…";
    connect();
  }
}, 1000);

document.addEventListener("DOMContentLoaded", connect);
