// ptdry ui: the runs page — the `ptdry runs` table with a query box, filters, sorting,
// pagination, a selection to compare, and live updates while runs are running.
"use strict";

(() => {
  const {el, fill, api, fmt, fmtDate, fmtDuration, statusBadge} = ptdry;
  const PAGE = 50;
  const REFRESH_MS = 5000;
  const main = document.getElementById("main");
  const params = new URLSearchParams(location.search);
  const state = {
    where: params.get("where") || "",
    project: params.get("project") || "",
    name: params.get("name") || "",
    tag: params.get("tag") || "",
    all: params.get("all") === "1",
    sort: params.get("sort") || "-created",
    offset: Number(params.get("offset") || 0),
  };
  const selected = new Set();
  let timer = null;
  let last = null;

  const where = el("input", {type: "search", class: "where", name: "where", value: state.where, spellcheck: "false",
    placeholder: "where: lr < 1e-3 and status = completed   (or a JSON filter)", "aria-label": "where"});
  const project = el("input", {type: "text", class: "small", name: "project", value: state.project, placeholder: "project"});
  const name = el("input", {type: "text", class: "small", name: "name", value: state.name, placeholder: "name starts with"});
  const tag = el("input", {type: "text", class: "small", name: "tag", value: state.tag, placeholder: "tag"});
  const all = el("input", {type: "checkbox", name: "all", checked: state.all});
  const apply = el("button", {type: "button", class: "primary", id: "apply", onclick: () => search(0)}, "Filter");
  const whereError = el("div", {class: "where-error", id: "where-error"});
  const compare = el("button", {type: "button", id: "compare", disabled: true, onclick: openCompare}, "Compare selected");
  const counter = el("span", {id: "count"});
  const prev = el("button", {type: "button", id: "prev", onclick: () => search(Math.max(0, state.offset - PAGE))}, "‹ prev");
  const next = el("button", {type: "button", id: "next", onclick: () => search(state.offset + PAGE)}, "next ›");
  const live = el("span", {class: "muted", id: "live"});
  const table = el("div", {id: "table"});
  for (const input of [where, project, name, tag]) {
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") search(0); });
  }
  all.addEventListener("change", () => search(0));

  function query(extra) {
    const q = new URLSearchParams();
    for (const k of ["where", "project", "name", "tag"]) if (state[k]) q.set(k, state[k]);
    if (state.all) q.set("all", "1");
    for (const [k, v] of Object.entries(extra || {})) q.set(k, String(v));
    return q;
  }

  function search(offset) {
    Object.assign(state, {where: where.value.trim(), project: project.value.trim(), name: name.value.trim(),
                          tag: tag.value.trim(), all: all.checked, offset});
    const shown = query({sort: state.sort});
    if (offset) shown.set("offset", String(offset));
    history.replaceState(null, "", `/?${shown}`);
    load(true);
  }

  function showWhereError(error) {
    const body = error.body || {};
    if (body.column && state.where && body.field === "where") {
      whereError.textContent = `${state.where}\n${" ".repeat(body.column - 1)}^ ${error.message}`;
    } else {
      whereError.textContent = error.message;
    }
  }

  async function load(withCount) {
    clearTimeout(timer);
    let page;
    try {
      page = await api(`/api/runs?${query({sort: state.sort, limit: PAGE, offset: state.offset})}`);
    } catch (e) {
      showWhereError(e);
      table.replaceChildren();
      counter.textContent = "";
      return;
    }
    whereError.textContent = "";
    last = page;
    draw(page);
    if (withCount) countRuns(page);
    if (page.runs.some((r) => r.state === "running")) {
      live.textContent = "live: running runs refresh every 5 s";
      timer = setTimeout(() => load(false), REFRESH_MS);
    } else {
      live.textContent = "";
    }
  }

  async function countRuns(page) {
    const first = page.runs.length ? page.offset + 1 : 0;
    const shownTo = page.offset + page.runs.length;
    counter.textContent = `${first}–${shownTo}`;
    try {
      const {count} = await api(`/api/runs/count?${query()}`);
      counter.textContent = `${first}–${shownTo} of ${count}`;
    } catch (e) {
      counter.textContent = `${first}–${shownTo}`;
    }
  }

  function sortHeader(label, field, cls) {
    const active = state.sort.replace(/^[-+]/, "") === field;
    const descending = state.sort.startsWith("-");
    const th = el("th", {class: `sortable${active ? " sorted" : ""}${active && !descending ? " asc" : ""}${cls ? " " + cls : ""}`,
      title: `sort by ${field}`, "data-field": field}, label);
    th.addEventListener("click", () => {
      state.sort = active && descending ? field : `-${field}`;
      search(state.offset);
    });
    return th;
  }

  function draw(page) {
    prev.disabled = page.offset === 0;
    next.disabled = !page.has_more;
    if (!page.runs.length) {
      table.replaceChildren(el("div", {class: "empty"}, "no runs match"));
      return;
    }
    const {config, metrics} = page.columns;
    const head = el("tr", {},
      el("th", {}, ""),
      sortHeader("id", "id"), sortHeader("name", "name"), sortHeader("ver", "version", "num"), sortHeader("status", "status"),
      sortHeader("created", "created"), el("th", {class: "num"}, "duration"),
      config.map((c) => sortHeader(c, c, "num")),
      metrics.map((m) => sortHeader(m, `summary.${m}.best`, "num")),
      el("th", {}, "tags"));
    const rows = page.runs.map((r) => {
      const box = el("input", {type: "checkbox", class: "select", "data-id": r.id, checked: selected.has(r.id)});
      box.addEventListener("change", () => {
        if (box.checked) selected.add(r.id); else selected.delete(r.id);
        updateCompare();
      });
      return el("tr", {"data-id": r.id, "data-state": r.state},
        el("td", {}, box),
        el("td", {class: "mono"}, el("a", {href: `/runs/${encodeURIComponent(r.id)}`}, r.id.slice(0, 8))),
        el("td", {}, r.parent ? el("span", {class: "muted"}, r.name) : r.name),
        el("td", {class: "num"}, fmt(r.version)),
        el("td", {}, statusBadge(r.state)),
        el("td", {}, fmtDate(r.created_at)),
        el("td", {class: "num"}, fmtDuration(r.duration)),
        config.map((c) => el("td", {class: "num"}, fmt(r.config[c]))),
        metrics.map((m) => {
          const v = r.metrics[m];
          return el("td", {class: "num", title: v ? `last ${fmt(v.last)}, best (${v.mode}) ${fmt(v.best)}` : ""}, v ? fmt(v.best) : "–");
        }),
        el("td", {}, r.tags.map((t) => el("span", {class: "tag"}, t))));
    });
    table.replaceChildren(el("div", {class: "scroll"}, el("table", {class: "grid", id: "runs"}, el("thead", {}, head), el("tbody", {}, rows))));
  }

  function updateCompare() {
    compare.disabled = selected.size < 2;
    compare.textContent = selected.size ? `Compare selected (${selected.size})` : "Compare selected";
  }

  function openCompare() {
    const q = new URLSearchParams();
    for (const id of selected) q.append("id", id);
    location.href = `/compare?${q}`;
  }

  (async () => {
    await ptdry.header("Runs");
    fill(main, 
      el("h1", {}, "Runs"),
      el("div", {class: "filters"}, where, project, name, tag, el("label", {}, all, " nested modules"), apply),
      whereError,
      el("div", {class: "toolbar"}, compare, live, el("span", {class: "spacer"}), counter, prev, next),
      table);
    load(true);
  })();
})();
