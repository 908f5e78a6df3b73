// ptdry ui: a parallel-coordinates plot in SVG — one vertical axis per hyperparameter and
// one for the chosen metric, one line per run, colored by the metric (blue low, red high).
"use strict";

const ptdryParcoords = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // An axis maps its values to [0, 1]: numbers linearly (log when they span > 2 decades and
  // are all positive), anything else as evenly spaced categories.
  function scale(values) {
    const present = values.filter((v) => v !== null && v !== undefined);
    const numeric = present.length > 0 && present.every((v) => typeof v === "number" && Number.isFinite(v));
    if (numeric) {
      let lo = Math.min(...present), hi = Math.max(...present);
      const log = lo > 0 && hi / lo > 100;
      const f = log ? Math.log10 : (v) => v;
      const a = f(lo), b = f(hi);
      const pos = (v) => (v === null || v === undefined ? null : b === a ? 0.5 : (f(v) - a) / (b - a));
      const ticks = b === a ? [lo] : [lo, log ? Math.pow(10, (a + b) / 2) : (lo + hi) / 2, hi];
      return {pos, ticks, label: (v) => short(ptdry.fmt(typeof v === "number" ? Number(v.toPrecision(3)) : v))};
    }
    const cats = [...new Set(present.map((v) => JSON.stringify(v)))].sort();
    const pos = (v) => (v === null || v === undefined ? null : cats.length === 1 ? 0.5 : cats.indexOf(JSON.stringify(v)) / (cats.length - 1));
    return {pos, ticks: cats.map((c) => JSON.parse(c)), label: (v) => short(ptdry.fmt(v))};
  }

  function short(text, most) {
    most = most || 18;
    return text.length > most ? text.slice(0, most - 1) + "…" : text;
  }

  function color(t) {  // 0 → blue, 1 → red
    if (t === null || t === undefined) return "#98a2b3";
    const r = Math.round(47 + t * (214 - 47)), g = Math.round(111 + t * (40 - 111)), b = Math.round(222 + t * (40 - 222));
    return `rgb(${r},${g},${b})`;
  }

  // axes: [{name, values: [one per run]}]; the last axis is the metric. runs: [{label}].
  function draw(container, axes, runs) {
    const width = Math.max(480, container.clientWidth || 800), height = 340;
    const top = 30, bottom = 30, left = 70, right = 110;
    const root = svg("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "parallel coordinates"});
    if (axes.length < 2) {
      root.append(svg("text", {x: 20, y: 40}, "pick runs whose hyperparameters differ to see them against the metric"));
      container.replaceChildren(root);
      return root;
    }
    const scales = axes.map((a) => scale(a.values));
    const x = (i) => left + (i * (width - left - right)) / (axes.length - 1);
    const y = (t) => top + (1 - t) * (height - top - bottom);
    const metric = scales[scales.length - 1];
    runs.forEach((run, r) => {
      const pts = axes.map((a, i) => [x(i), scales[i].pos(a.values[r])]).filter((p) => p[1] !== null);
      if (pts.length < 2) return;
      const d = pts.map((p, i) => `${i ? "L" : "M"}${p[0].toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
      const line = svg("path", {d, class: "run", stroke: color(metric.pos(axes[axes.length - 1].values[r]))});
      line.append(svg("title", {}, run.label));
      root.append(line);
    });
    axes.forEach((a, i) => {
      const g = svg("g", {class: "axis"});
      g.append(svg("line", {x1: x(i), x2: x(i), y1: top, y2: height - bottom}));
      const name = svg("text", {x: x(i), y: top - 12, "text-anchor": "middle", "font-weight": i === axes.length - 1 ? "700" : "400"},
        short(a.name.split(".").slice(-2).join("."), 26));
      name.append(svg("title", {}, a.name));
      g.append(name);
      for (const t of scales[i].ticks) {
        const p = scales[i].pos(t);
        g.append(svg("text", {x: x(i) + 5, y: y(p) + 4}, scales[i].label(t)));
      }
      root.append(g);
    });
    container.replaceChildren(root);
    return root;
  }

  return {draw, scale};
})();
