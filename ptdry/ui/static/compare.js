// ptdry ui: runs side by side — overlaid curves, the config diff, and a parallel-coordinates
// plot of the hyperparameters that differ against a chosen metric.
"use strict";

(() => {
  const {el, fill, api, fmt, statusBadge, COLORS} = ptdry;
  const main = document.getElementById("main");
  const ids = new URLSearchParams(location.search).getAll("id");

  function legend(runs) {
    return el("table", {class: "grid", id: "compared"},
      el("thead", {}, el("tr", {}, ["", "run", "status", "id"].map((h) => el("th", {}, h)))),
      el("tbody", {}, runs.map((r, i) => el("tr", {},
        el("td", {}, el("span", {class: "legend-swatch", style: `background:${COLORS[i % COLORS.length]}`})),
        el("td", {}, el("a", {href: `/runs/${encodeURIComponent(r.id)}`}, `${r.name} v${r.version}`)),
        el("td", {}, statusBadge(r.state)),
        el("td", {class: "mono"}, r.id.slice(0, 8))))));
  }

  function configDiff(data) {
    const only = el("input", {type: "checkbox", name: "only-differences", checked: true});
    const box = el("div", {});
    const draw = () => {
      const rows = data.config.filter((c) => c.differs || !only.checked).map((c) => el("tr", {class: c.differs ? "differs" : ""},
        el("td", {class: "mono"}, c.path), c.values.map((v) => el("td", {class: "mono"}, fmt(v)))));
      box.replaceChildren(rows.length
        ? el("div", {class: "scroll"}, el("table", {class: "grid", id: "config-diff"},
            el("thead", {}, el("tr", {}, el("th", {}, "config"), data.runs.map((r) => el("th", {}, `${r.name} v${r.version}`)))),
            el("tbody", {}, rows)))
        : el("p", {class: "muted"}, "the configs are identical"));
    };
    only.addEventListener("change", draw);
    draw();
    return el("div", {}, el("label", {}, only, " only values that differ"), box);
  }

  function summaryTable(data) {
    if (!data.metrics.length) return el("p", {class: "muted"}, "no summaries yet");
    return el("table", {class: "grid", id: "summaries"},
      el("thead", {}, el("tr", {}, el("th", {}, "metric (best)"), data.runs.map((r) => el("th", {}, `${r.name} v${r.version}`)))),
      el("tbody", {}, data.metrics.map((m) => el("tr", {}, el("td", {}, m),
        data.runs.map((r) => el("td", {class: "num", title: r.summary[m] ? `last ${fmt(r.summary[m].last)}` : ""},
          r.summary[m] ? fmt(r.summary[m].best) : "–"))))));
  }

  function parallel(data) {
    const box = el("div", {class: "parcoords", id: "parcoords"});
    const metrics = [...data.metrics].sort((a, b) => (b.startsWith("val") - a.startsWith("val")) || a.localeCompare(b));
    const select = el("select", {name: "metric"}, metrics.map((m) => el("option", {value: m}, m)));
    const draw = () => {
      const scalar = (v) => v === null || typeof v !== "object";
      const params = data.config.filter((c) => c.differs && c.values.every(scalar)).slice(0, 10);
      const m = select.value;
      const axes = params.map((c) => ({name: c.path, values: c.values}));
      if (m) axes.push({name: m, values: data.runs.map((r) => (r.summary[m] ? r.summary[m].best : null))});
      ptdryParcoords.draw(box, axes, data.runs.map((r) => ({label: `${r.name} v${r.version}`})));
    };
    select.addEventListener("change", draw);
    setTimeout(draw);
    return el("div", {}, metrics.length ? el("label", {}, "metric ", select) : el("p", {class: "muted"}, "no summary metric to plot against yet"), box);
  }

  async function curves(data, container) {
    const details = await Promise.all(data.runs.map((r) => api(`/api/runs/${encodeURIComponent(r.id)}`)));
    const metrics = [...new Set(details.flatMap((d) => d.metrics))].sort();
    const specs = metrics.map((m) => ({
      title: m,
      series: data.runs.map((r, i) => ({run: r.id, metric: m, label: `${r.name} v${r.version}`, color: COLORS[i % COLORS.length]}))
        .filter((s, i) => details[i].metrics.includes(m)),
    }));
    if (!specs.length) { container.replaceChildren(el("p", {class: "muted"}, "no history recorded")); return; }
    const charts = el("div", {class: "charts", id: "charts"});
    const set = new ptdryCharts.CurveSet(charts, specs, {onError: (e) => ptdry.showError(charts, e)});
    container.replaceChildren(ptdryCharts.controls(set), charts);
    await set.refresh();
  }

  (async () => {
    await ptdry.header("Compare");
    if (ids.length < 2) {
      fill(main, el("div", {class: "empty"}, "select two or more runs in the ", el("a", {href: "/"}, "runs table"), " to compare them"));
      return;
    }
    try {
      const q = new URLSearchParams();
      for (const id of ids) q.append("id", id);
      const data = await api(`/api/compare?${q}`);
      const curveBox = el("div", {id: "curves"}, el("p", {class: "muted"}, "loading curves…"));
      fill(main, 
        el("h1", {}, `Compare ${data.runs.length} runs`),
        legend(data.runs),
        el("h2", {}, "Curves"), curveBox,
        el("h2", {}, "Hyperparameters against a metric"), parallel(data),
        el("h2", {}, "Config"), configDiff(data),
        el("h2", {}, "Summaries"), summaryTable(data));
      await curves(data, curveBox);
    } catch (e) {
      ptdry.showError(main, e);
    }
  })();
})();
