// batch-attend serve: the page's few behaviours, plain JavaScript, no library.
// Every visible word comes from the server, translated, in the JSON of #strings.
"use strict";

const T = JSON.parse(document.getElementById("strings").textContent);
const $ = (id) => document.getElementById(id);
const LOCALE = document.documentElement.lang;
const number = (n, digits = 0) =>
  new Intl.NumberFormat(LOCALE, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);

function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (all, name) => (name in values ? values[name] : all));
}

function announce(text, id = "announce") {
  const region = $(id);
  if (region) region.textContent = text;
}

// Every request that changes something carries the header the server asks for.
async function post(url, body, isJson = true) {
  const options = { method: "POST", headers: { "X-Batch-Attend": "1" }, credentials: "same-origin" };
  if (isJson) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body || {});
  } else {
    options.body = body;
  }
  const response = await fetch(url, options);
  if (!response.ok) {
    let data = {};
    try { data = await response.json(); } catch (e) { /* not JSON */ }
    throw new Error(data.error || response.status + " " + response.statusText);
  }
  return response;
}

// --- upload -------------------------------------------------------------------------------
function setUpUpload() {
  const form = $("upload");
  if (!form) return;
  const input = $("file");
  const message = $("upload-message");
  async function send(file) {
    message.textContent = T.uploading;
    message.className = "message";
    const data = new FormData();
    data.append("file", file);
    try {
      const answer = await (await post("/upload", data, false)).json();
      location.assign(answer.url);
    } catch (e) {
      message.textContent = T.upload_failed + " " + e.message;
      message.className = "message error";
    }
  }
  input.addEventListener("change", () => { if (input.files.length) send(input.files[0]); });
  ["dragenter", "dragover"].forEach((name) => form.addEventListener(name, (event) => {
    event.preventDefault();
    form.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => form.addEventListener(name, () => form.classList.remove("over")));
  form.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) send(event.dataTransfer.files[0]);
  });
  form.addEventListener("submit", (event) => event.preventDefault());
}

// --- preview: every choice saved at once, and the preview it makes put in place ---------------
// A select changes the page only when its value is chosen: by mouse, or by the keyboard once
// Enter is pressed or the focus leaves it (arrow keys alone only move through the options).
function setUpPreview(url) {
  const box = $("preview");
  if (!box) return;
  let problem = "";

  async function save(choices) {
    const focused = document.activeElement && document.activeElement.id;
    announce(T.updating);
    box.setAttribute("aria-busy", "true");
    try {
      const query = "?part=preview&problem=" + encodeURIComponent(problem);
      const answer = choices === null
        ? await fetch(url + query, { credentials: "same-origin" })
        : await post(url + "/options" + query, choices);
      box.innerHTML = await answer.text();
      announce("");
      const again = focused && $(focused);
      if (again) again.focus();
    } catch (e) {
      announce(e.message, "alert");
    } finally {
      box.removeAttribute("aria-busy");
    }
  }

  function chosen(field) {
    if (field.dataset.choice) {
      const number = "number" in field.dataset;
      return { [field.dataset.choice]: number ? (field.value ? Number(field.value) : null) : field.value };
    }
    if (field.dataset.default) {
      return { [field.dataset.default]: field.type === "checkbox" ? field.checked : field.value.trim() };
    }
    if (field.name === "pool") {
      const members = field.type === "checkbox"
        ? Array.from(box.querySelectorAll("input[name=pool]:checked")).map((o) => o.value)
        : field.value.split(",").map((s) => s.trim()).filter(Boolean);
      return { pool: members };
    }
    if (field.dataset.editRow) {
      return { cell_edits: { [field.dataset.editRow]: { [field.dataset.editColumn]: field.value } } };
    }
    if (field.dataset.mapRole) {
      return { value_map: { [field.dataset.mapRole]: { [field.dataset.mapValue]: field.value.trim() } } };
    }
    return null;
  }

  const keyed = new WeakSet();  // selects moved by the keyboard, not yet chosen
  function commit(field) {
    keyed.delete(field);
    const choice = chosen(field);
    if (choice) save(choice);
  }
  box.addEventListener("keydown", (event) => {
    const field = event.target;
    if (field.tagName !== "SELECT") return;
    if (event.key === "Enter") {
      if (keyed.has(field)) { event.preventDefault(); commit(field); }
    } else if (event.key !== "Tab") {
      keyed.add(field);
    }
  });
  box.addEventListener("change", (event) => {
    if (!keyed.has(event.target)) commit(event.target);
  });
  box.addEventListener("focusout", (event) => {
    if (keyed.has(event.target)) commit(event.target);
  });
  box.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.set) save(JSON.parse(button.dataset.set));
    if ("problem" in button.dataset) {
      problem = button.dataset.problem;
      save(null);
    }
    if (button.id === "start" && confirm(button.dataset.confirm)) start(url, {});
  });
}

// --- progress ---------------------------------------------------------------------------------
function showCounts(counts) {
  document.querySelectorAll("#counts [data-status]").forEach((chip) => {
    const n = counts[chip.dataset.status] || 0;
    chip.hidden = chip.dataset.status === "undone" && !n;  // shown once a run was undone
    const [before, after] = T.count_words[chip.dataset.status][n === 1 ? 0 : 1].split("{count}");
    const count = document.createElement("b");
    count.textContent = number(n);
    chip.replaceChildren(before, count, after);
  });
}

// The bar and the line count every row of the sheet, as the chips do: rows decided before
// sending (invalid, duplicates, done by an earlier run) and rows this run sent.
let lastShare = 0;
function showProgress(p) {
  const done = Object.values(p.counts).reduce((a, b) => a + b, 0);
  const share = p.rows ? Math.floor((100 * done) / p.rows) : 0;
  $("bar").style.width = share + "%";
  $("bar-box").setAttribute("aria-valuenow", share);
  $("sent").textContent = p.planned ? fill(T.of, { done: number(done), total: number(p.rows) }) : T.preparing;
  $("rate").textContent = p.rows_per_s ? "· " + fill(T.rate, { rate: number(p.rows_per_s, 1) }) : "";
  $("left").textContent = p.seconds_left != null && p.done < p.total ? "· " + fill(T.left, { seconds: number(p.seconds_left) }) : "";
  if (Math.floor(share / 25) > Math.floor(lastShare / 25)) announce($("sent").textContent);
  lastShare = share;
  showCounts(p.counts);
}

function showEnd(end) {
  const state = $("state");
  state.textContent = T.states[end.state] || end.state;
  state.className = "state state-" + end.state;
  $("run").dataset.state = end.state;
  const keep = document.activeElement === $("cancel");
  $("cancel").hidden = true;
  $("bar-box").hidden = true;  // the summary line says how it went
  $("stats").hidden = true;
  $("progress-title").textContent = $("progress-title").dataset.rows;
  showCounts(end.counts || {});
  $("done").hidden = false;
  $("summary").textContent = end.summary;
  const message = $("message");
  message.textContent = end.message || (end.state === "interrupted" ? T.interrupted : "");
  message.className = "alert " + (end.state === "interrupted" ? "note" : "error");
  message.hidden = !message.textContent;
  showFiles(end.downloads);
  $("resume").hidden = !end.resumable;
  const undo = $("undo");
  undo.hidden = !end.undo;
  if (end.undo) [undo.textContent, undo.dataset.confirm] = [end.undo.label, end.undo.confirm];
  $("download-xlsx").classList.toggle("primary", !end.resumable);
  showNotDone(end.not_done || { rows: [], more: 0 });
  announce([T.states[end.state], end.summary, message.textContent].filter(Boolean).join(". "));
  if (keep || document.activeElement === document.body) (end.resumable ? $("resume") : $("done-title")).focus();
}

// The CSV comes with the end; the workbook of the same results a moment later.
function showFiles(downloads) {
  $("download-xlsx").hidden = !downloads.xlsx;
  $("download-csv").hidden = !downloads.csv;
}

function showNotDone(notDone) {
  const body = $("not-done-rows");
  const label = document.querySelector("#not-done th").textContent;
  body.replaceChildren(...notDone.rows.map(([row, status, error]) => {
    const tr = document.createElement("tr");
    const chip = document.createElement("span");
    chip.className = "chip s-" + status;
    chip.textContent = T.statuses[status] || status;
    for (const cell of [String(row), chip, error]) {
      const td = document.createElement("td");
      td.append(cell);
      tr.append(td);
    }
    tr.firstChild.dataset.label = label;
    return tr;
  }));
  $("not-done").hidden = !notDone.rows.length;
  const more = $("not-done-more");
  more.textContent = fill(T.more, { count: number(notDone.more) });
  more.hidden = !notDone.more;
}

function follow(url) {
  $("progress").hidden = false;
  $("bar-box").hidden = false;
  $("stats").hidden = false;
  $("bar").style.width = "0";
  $("sent").textContent = T.preparing;
  $("rate").textContent = $("left").textContent = "";
  $("done").hidden = true;
  $("cancel").hidden = false;
  $("cancel").removeAttribute("aria-disabled");
  $("cancel").textContent = $("cancel").dataset.label || $("cancel").textContent;
  const state = $("state");
  state.textContent = T.states.running;
  state.className = "state state-running";
  lastShare = 0;
  const source = new EventSource(url + "/events");
  source.addEventListener("progress", (event) => showProgress(JSON.parse(event.data)));
  source.addEventListener("end", (event) => showEnd(JSON.parse(event.data)));
  source.addEventListener("files", (event) => {
    source.close();
    showFiles(JSON.parse(event.data));
  });
}

// Start, Resume and Undo: the run (or its undo) goes on in the server, followed here.
async function start(url, choices, what = "/start") {
  const message = $("start-message");
  if (message) message.textContent = T.starting;
  try {
    await post(url + what, choices);
    if ($("preview")) $("preview").hidden = true;
    follow(url);
    announce(T.started);
    $("progress-title").focus();
  } catch (e) {
    if (message) message.textContent = e.message;
    announce(e.message, "alert");
  }
}

function setUpRun() {
  const run = $("run");
  if (!run) return;
  const url = run.dataset.url;
  setUpPreview(url);
  $("resume").addEventListener("click", () => start(url, {}));
  $("undo").addEventListener("click", () => { if (confirm($("undo").dataset.confirm)) start(url, {}, "/undo"); });
  const cancel = $("cancel");
  cancel.dataset.label = cancel.textContent;
  cancel.addEventListener("click", async () => {
    if (cancel.getAttribute("aria-disabled")) return;
    cancel.setAttribute("aria-disabled", "true");  // not disabled: the focus stays on it
    cancel.textContent = T.cancelling;
    try { await post(url + "/cancel"); } catch (e) { /* it ended meanwhile */ }
  });
  if (run.dataset.state === "running") follow(url);
}

// --- history: a run deleted once the person confirms -------------------------------------------
document.querySelectorAll("[data-delete]").forEach((button) => {
  button.addEventListener("click", async () => {
    if (!confirm(button.dataset.confirm)) return;
    try {
      await post(button.dataset.delete);
      const row = button.closest("tr");
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      (next ? next.querySelector("a") : document.querySelector("h1")).focus();
    } catch (e) {
      alert(e.message);
    }
  });
});

setUpUpload();
setUpRun();
