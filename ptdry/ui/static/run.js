// ptdry ui: one run — status, timings, provenance, error, curves of every metric, config
// tree, summary, checkpoints and artifacts; tags and deletion with --allow-edit.
"use strict";

(() => {
  const {el, fill, api, fmt, fmtDate, fmtDuration, fmtBytes, statusBadge, COLORS} = ptdry;
  const REFRESH_MS = 5000;
  const main = document.getElementById("main");
  const runId = decodeURIComponent(location.pathname.split("/").pop());
  let info = {allow_edit: false};
  let curves = null;
  let timer = null;

  // Charts: one per metric name, the phases (train, val, ...) overlaid: "loss" shows
  // train.loss and val.loss.
  function chartSpecs(run) {
    const groups = new Map();
    for (const metric of run.metrics) {
      const name = metric.includes(".") ? metric.slice(metric.indexOf(".") + 1) : metric;
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(metric);
    }
    return [...groups].map(([title, metrics]) => ({
      title,
      series: metrics.map((m, i) => ({run: run.id, metric: m, label: m, color: COLORS[i % COLORS.length]})),
    }));
  }

  function tree(value, key) {
    if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
      const cls = value.__class__;
      const node = el("details", {class: "tree", open: true},
        el("summary", {}, key === undefined ? "config" : el("span", {class: "key"}, key), cls ? el("span", {class: "cls"}, cls) : null));
      for (const [k, v] of Object.entries(value)) if (k !== "__class__") node.append(tree(v, k));
      return node;
    }
    return el("div", {class: "leaf"}, el("span", {class: "key"}, key), ": ", el("span", {class: "mono"}, fmt(value)));
  }

  function infoGrid(run) {
    const s = run.status || {};
    const git = run.git ? `${String(run.git.commit || "").slice(0, 10)}${run.git.dirty ? " (uncommitted changes)" : ""}` : "–";
    const items = [
      ["status", statusBadge(run.state)], ["duration", fmtDuration(run.duration)],
      ["created", fmtDate(run.created_at)], ["started", fmtDate(s.started_at)],
      ["ended", fmtDate(s.ended_at)], ["heartbeat", fmtDate(s.heartbeat)],
      ["project", run.project], ["class", el("span", {class: "mono"}, run.cls || "–")],
      ["host", run.host || "–"], ["git", el("span", {class: "mono"}, git)],
      ["category", el("span", {class: "mono"}, String(run.category || "–").slice(0, 16))],
      ["id", el("span", {class: "mono"}, run.id)],
    ];
    const libs = Object.entries(run.library_versions || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    return el("div", {},
      el("dl", {class: "info", id: "info"}, items.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      libs ? el("p", {class: "muted"}, `libraries: ${libs}`) : null,
      run.history_pending ? el("p", {class: "error-box"}, "part of this run's history is still in a local journal: run `ptdry sync` where it ran") : null);
  }

  function errorBlock(run) {
    const error = (run.status || {}).error;
    if (!error) return null;
    return el("section", {id: "error"}, el("h2", {}, "Error"),
      el("div", {class: "error-box"}, el("strong", {}, `${error.type}: `), error.message,
        error.traceback ? el("pre", {}, error.traceback) : null));
  }

  function tagsEditor(run) {
    const box = el("span", {id: "tags"});
    const draw = (tags) => {
      box.replaceChildren(...tags.map((t) => el("span", {class: "tag"}, t,
        info.allow_edit ? el("button", {type: "button", title: `remove ${t}`, onclick: () => edit({remove: [t]})}, "×") : null)));
      if (info.allow_edit) {
        const input = el("input", {type: "text", class: "small", name: "new-tag", placeholder: "add a tag"});
        input.addEventListener("keydown", (e) => { if (e.key === "Enter" && input.value.trim()) edit({add: [input.value.trim()]}); });
        box.append(input);
      }
    };
    const edit = async (body) => {
      try {
        const result = await api(`/api/runs/${encodeURIComponent(run.id)}/tags`,
          {method: "POST", headers: {"Content-Type": "application/json", "Accept": "application/json"}, body: JSON.stringify(body)});
        draw(result.tags);
      } catch (e) { alert(e.message); }
    };
    draw(run.tags);
    return box;
  }

  function deleteButton(run) {
    if (!info.allow_edit) return null;
    return el("button", {type: "button", class: "danger", id: "delete", onclick: async () => {
      if (!confirm(`Delete ${run.name} v${run.version} with its history, checkpoints and artifacts?`)) return;
      try {
        await api(`/api/runs/${encodeURIComponent(run.id)}`, {method: "DELETE"});
        location.href = "/";
      } catch (e) { alert(e.message); }
    }}, "Delete run");
  }

  function summaryTable(run) {
    const rows = Object.entries(run.summary).map(([m, s]) => el("tr", {},
      el("td", {}, m), el("td", {class: "num"}, fmt(s.last)), el("td", {class: "num"}, fmt(s.best)),
      el("td", {class: "num"}, fmt(s.best_step)), el("td", {}, s.mode || "")));
    if (!rows.length) return el("p", {class: "muted"}, "no summary yet (written when the run ends)");
    return el("table", {class: "grid", id: "summary"},
      el("thead", {}, el("tr", {}, ["metric", "last", "best", "best step", "mode"].map((h) => el("th", {}, h)))), el("tbody", {}, rows));
  }

  function artifactsTable(run) {
    if (!run.artifacts.length) return el("p", {class: "muted"}, "none");
    const rows = run.artifacts.map((a) => el("tr", {},
      el("td", {}, el("a", {href: `/api/runs/${encodeURIComponent(run.id)}/artifacts/${a.name.split("/").map(encodeURIComponent).join("/")}`, download: ""}, a.name)),
      el("td", {class: "num"}, fmtBytes(a.bytes)), el("td", {}, a.format || ""), el("td", {}, a.store || ""),
      el("td", {class: "mono"}, String(a.sha256 || "").slice(0, 12)),
      el("td", {class: "mono"}, a.meta ? fmt(a.meta) : "")));
    return el("div", {class: "scroll"}, el("table", {class: "grid", id: "artifacts"},
      el("thead", {}, el("tr", {}, ["name", "size", "format", "store", "sha256", "meta"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
  }

  async function draw() {
    const run = await api(`/api/runs/${encodeURIComponent(runId)}`);
    document.title = `${run.name} v${run.version} · ptdry`;
    const chartsBox = el("div", {class: "charts", id: "charts"});
    fill(main, 
      el("h1", {}, `${run.name} v${run.version} `, statusBadge(run.state), " ", deleteButton(run)),
      el("p", {}, "tags: ", tagsEditor(run)),
      infoGrid(run),
      errorBlock(run),
      el("h2", {}, "Curves"),
      run.metrics.length ? null : el("p", {class: "muted"}, "no history recorded"),
      el("div", {id: "chart-controls"}),
      chartsBox,
      el("h2", {}, "Summary"), summaryTable(run),
      el("h2", {}, "Checkpoints and artifacts"), artifactsTable(run),
      el("h2", {}, "Config"), el("div", {id: "config"}, tree(run.config)));
    if (run.metrics.length) {
      curves = new ptdryCharts.CurveSet(chartsBox, chartSpecs(run), {onError: (e) => ptdry.showError(chartsBox, e)});
      document.getElementById("chart-controls").replaceWith(ptdryCharts.controls(curves));
      await curves.refresh();
    }
    if (run.state === "running") timer = setTimeout(refresh, REFRESH_MS);
  }

  // While the run runs: its status and its curves, without losing zoom or settings.
  async function refresh() {
    try {
      const run = await api(`/api/runs/${encodeURIComponent(runId)}`);
      document.getElementById("info").replaceWith(infoGrid(run).querySelector("#info"));
      if (curves && run.metrics.length === curves.specs.flatMap((c) => c.series).length) await curves.refresh();
      else if (run.metrics.length) return draw();
      if (run.state === "running") timer = setTimeout(refresh, REFRESH_MS);
      else draw();
    } catch (e) {
      timer = setTimeout(refresh, REFRESH_MS);
    }
  }

  (async () => {
    info = await ptdry.header("Run");
    try {
      await draw();
    } catch (e) {
      ptdry.showError(main, e);
    }
  })();
})();
