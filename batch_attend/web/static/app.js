// batch-attend serve: the page's few behaviours, plain JavaScript, no library.
// Every visible word comes from the server, translated, in the JSON of #strings.
"use strict";

const T = JSON.parse(document.getElementById("strings").textContent);
const $ = (id) => document.getElementById(id);

function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (all, name) => (name in values ? values[name] : all));
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
  let data = {};
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) throw new Error(data.error || response.status + " " + response.statusText);
  return data;
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
      const answer = await post("/upload", data, false);
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

// --- preview: sheet, columns and defaults, each saved and shown in the preview ----------------
function setUpPreview(url) {
  async function save(choices) {
    try {
      await post(url + "/options", choices);
      location.reload();
    } catch (e) {
      alert(e.message);
    }
  }
  document.querySelectorAll("[data-choice]").forEach((select) => {
    select.addEventListener("change", () => {
      const choices = defaults();  // kept across the reload, as chosen so far
      const number = "number" in select.dataset;
      choices[select.dataset.choice] = number ? (select.value ? Number(select.value) : null) : select.value;
      save(choices);
    });
  });
  if ($("apply")) $("apply").addEventListener("click", () => save(defaults()));
  document.querySelectorAll("[data-set]").forEach((button) => {
    button.addEventListener("click", () => save({ ...defaults(), ...JSON.parse(button.dataset.set) }));
  });
}

function defaults() {
  const pool = $("pool");
  let members = [];
  if (pool && pool.tagName === "SELECT") {
    members = Array.from(pool.selectedOptions).map((o) => o.value);
  } else if (pool) {
    members = pool.value.split(",").map((s) => s.trim()).filter(Boolean);
  }
  const choices = { pool: members };
  if ($("department")) choices.department = $("department").value.trim();
  if ($("distribute")) choices.distribute = $("distribute").value;
  if ($("verify_whatsapp")) choices.verify_whatsapp = $("verify_whatsapp").checked;
  if ($("online_only")) choices.online_only = $("online_only").checked;
  return choices;
}

// --- progress ---------------------------------------------------------------------------------
function showCounts(counts) {
  document.querySelectorAll("#counts [data-status]").forEach((chip) => {
    const n = counts[chip.dataset.status] || 0;
    const [before, after] = T.count_words[chip.dataset.status][n === 1 ? 0 : 1].split("{count}");
    const count = document.createElement("b");
    count.textContent = n;
    chip.replaceChildren(before, count, after);
  });
}

function showProgress(p) {
  const share = p.total ? Math.round((100 * p.done) / p.total) : 0;
  $("bar").style.width = share + "%";
  $("sent").textContent = fill(T.of, { done: p.done, total: p.total });
  $("rate").textContent = p.rows_per_s ? "· " + fill(T.rate, { rate: p.rows_per_s }) : "";
  $("left").textContent = p.seconds_left != null && p.done < p.total ? "· " + fill(T.left, { seconds: p.seconds_left }) : "";
  showCounts(p.counts);
}

function showEnd(end) {
  const state = $("state");
  state.textContent = T["state_" + end.state] || end.state;
  state.className = "state state-" + end.state;
  $("run").dataset.state = end.state;
  $("cancel").hidden = true;
  $("bar-box").hidden = true;  // the summary line says how it went
  $("stats").hidden = true;
  showCounts(end.counts || {});
  $("done").hidden = false;
  $("summary").textContent = end.summary || (end.state === "interrupted" ? T.interrupted : "");
  const message = $("message");
  message.textContent = end.message || (end.state === "interrupted" ? T.interrupted : "");
  message.hidden = !message.textContent;
  $("download-xlsx").hidden = !end.downloads.xlsx;
  $("download-csv").hidden = !end.downloads.csv;
  $("resume").hidden = !end.resumable;
  showNotDone(end.not_done || { rows: [], more: 0 });
}

function showNotDone(notDone) {
  const body = $("not-done-rows");
  body.replaceChildren(...notDone.rows.map(([row, status, error]) => {
    const tr = document.createElement("tr");
    const chip = document.createElement("span");
    chip.className = "chip s-" + status;
    chip.textContent = T[status] || status;
    for (const cell of [String(row), chip, error]) {
      const td = document.createElement("td");
      td.append(cell);
      tr.append(td);
    }
    return tr;
  }));
  $("not-done").hidden = !notDone.rows.length;
  const more = $("not-done-more");
  more.textContent = fill(T.more, { count: notDone.more });
  more.hidden = !notDone.more;
}

function follow(url) {
  $("progress").hidden = false;
  $("bar-box").hidden = false;
  $("stats").hidden = false;
  $("bar").style.width = "0";
  $("sent").textContent = "";
  $("done").hidden = true;
  $("cancel").hidden = false;
  $("cancel").disabled = false;
  $("cancel").textContent = T.cancel;
  const state = $("state");
  state.textContent = T.state_running;
  state.className = "state state-running";
  const source = new EventSource(url + "/events");
  source.addEventListener("progress", (event) => showProgress(JSON.parse(event.data)));
  source.addEventListener("end", (event) => {
    source.close();
    showEnd(JSON.parse(event.data));
  });
}

async function start(url, choices) {
  const message = $("start-message");
  if (message) message.textContent = T.starting;
  try {
    await post(url + "/start", choices);
    const preview = ["source", "rows", "defaults", "preview-error"].map($).filter(Boolean);
    preview.forEach((section) => { section.hidden = true; });
    follow(url);
  } catch (e) {
    if (message) message.textContent = e.message;
    else alert(e.message);
  }
}

function setUpRun() {
  const run = $("run");
  if (!run) return;
  const url = run.dataset.url;
  setUpPreview(url);
  if ($("start")) $("start").addEventListener("click", () => start(url, defaults()));
  $("resume").addEventListener("click", () => start(url, {}));
  $("cancel").addEventListener("click", async () => {
    $("cancel").disabled = true;
    $("cancel").textContent = T.cancelling;
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
      button.closest("tr").remove();
    } catch (e) {
      alert(e.message);
    }
  });
});

setUpUpload();
setUpRun();
