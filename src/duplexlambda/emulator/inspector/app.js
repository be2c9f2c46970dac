"use strict";
// The duplexlambda inspector: the list of invocations (server-sent events keep it live) and
// the detail of one (headers, previews, runtime log, timeline of chunks and upload pieces).
const API = "api/invocations";
const rows = document.getElementById("rows");
const seen = new Map();
let selected = null;

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function ms(v) { return v === null || v === undefined ? "-" : v.toFixed(1) + " ms"; }
function size(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

function addRow(inv) {
  if (seen.has(inv.request_id)) return;
  const tr = el("tr", { "data-request-id": inv.request_id });
  if (inv.error_type) tr.className = "failed";
  const what = inv.front.startsWith("invoke") ? inv.front : inv.method + " " + inv.path;
  const cells = [
    [new Date(inv.time * 1000).toLocaleTimeString(), ""],
    [inv.front, ""], [what, ""], [String(inv.status), "num"],
    [ms(inv.duration_ms), "num"], [ms(inv.ttfb_ms), "num"],
    [size(inv.bytes_in), "num"], [size(inv.bytes_out), "num"],
    [(inv.error_type || "") + (inv.truncated ? " (truncated)" : ""), "err"],
  ];
  for (const [text, cls] of cells) tr.appendChild(el("td", cls ? { class: cls } : {}, text));
  tr.addEventListener("click", () => show(inv.request_id));
  seen.set(inv.request_id, tr);
  rows.insertBefore(tr, rows.firstChild);
}

function fillHeaders(table, headers) {
  table.replaceChildren();
  for (const [k, v] of headers) {
    const tr = el("tr");
    tr.appendChild(el("td", {}, k));
    tr.appendChild(el("td", {}, v));
    table.appendChild(tr);
  }
}

function fillPreview(pre, note, preview) {
  pre.textContent = preview.text !== null ? preview.text : "(binary, base64) " + preview.base64;
  note.textContent = size(preview.bytes) + (preview.truncated ? ", first 4 KiB shown" : "");
}

function drawTimeline(d) {
  const box = document.getElementById("timeline");
  box.replaceChildren();
  const span = Math.max(d.duration_ms, 1);
  const biggest = Math.max(1, ...d.marks.map((m) => m.bytes));
  const width = box.clientWidth || 800;
  for (const m of d.marks) {
    const h = 6 + Math.round(50 * Math.sqrt(m.bytes / biggest));
    const mark = el("div", {
      class: "mark " + m.kind, "data-mark": m.kind, "data-bytes": String(m.bytes),
      "data-t-ms": String(m.t_ms),
      title: (m.kind === "out" ? "chunk " : "upload ") + m.bytes + " B at " + m.t_ms.toFixed(1) + " ms",
    });
    mark.style.left = Math.min(width - 3, (m.t_ms / span) * (width - 3)) + "px";
    mark.style.height = h + "px";
    mark.style.top = (m.kind === "in" ? 62 - h : 2) + "px";
    box.appendChild(mark);
  }
  if (d.error_type) {
    const end = el("div", { class: "end", title: d.error_type });
    end.style.left = (width - 2) + "px";
    box.appendChild(end);
  }
  const axis = el("div", { class: "axis" }, "0 – " + span.toFixed(1) + " ms");
  box.appendChild(axis);
  const outs = d.marks.filter((m) => m.kind === "out").length;
  const ins = d.marks.length - outs;
  document.getElementById("timeline-note").textContent =
    outs + " answer chunks (blue), " + ins + " upload pieces (orange)" +
    (d.marks_dropped ? ", " + d.marks_dropped + " more not drawn" : "");
}

async function show(id) {
  if (selected) selected.classList.remove("selected");
  selected = seen.get(id) || null;
  if (selected) selected.classList.add("selected");
  const res = await fetch(API + "/" + encodeURIComponent(id));
  if (!res.ok) return;
  const d = await res.json();
  const pane = document.getElementById("detail");
  pane.hidden = false;
  pane.dataset.requestId = id;
  const what = d.front.startsWith("invoke") ? d.front : d.method + " " + d.path;
  document.getElementById("detail-title").textContent =
    what + " — " + d.status + " — " + id;
  const box = document.getElementById("error-box");
  if (d.error_type) {
    box.hidden = false;
    box.replaceChildren(el("strong", { "data-error-type": d.error_type }, d.error_type));
    const body = typeof d.error_body === "string" ? d.error_body : JSON.stringify(d.error_body, null, 2);
    box.appendChild(el("div", {}, body || ""));
  } else {
    box.hidden = true;
    box.replaceChildren();
  }
  fillHeaders(document.getElementById("req-headers"), d.request_headers);
  fillHeaders(document.getElementById("res-headers"), d.response_headers);
  fillPreview(document.getElementById("req-body"), document.getElementById("req-note"), d.request_preview);
  fillPreview(document.getElementById("res-body"), document.getElementById("res-note"), d.response_preview);
  document.getElementById("logs").textContent = d.logs.join("\n");
  drawTimeline(d);
}

async function load() {
  const res = await fetch(API);
  const data = await res.json();
  for (const inv of data.invocations.slice().reverse()) addRow(inv);
}

function live() {
  const status = document.getElementById("status");
  const source = new EventSource("events");
  source.addEventListener("open", () => { status.textContent = "live"; status.dataset.state = "live"; });
  source.addEventListener("error", () => { status.textContent = "disconnected, retrying"; status.dataset.state = "error"; });
  source.addEventListener("invocation", (e) => addRow(JSON.parse(e.data)));
}

load().then(live);
