// ptdry ui: learning curves drawn with uPlot, down-sampled by the server to the plot's width.
// A CurveSet is a group of charts sharing the x axis (step or epoch), the y scale (linear or
// log), the smoothing and the zoomed range: dragging on any chart zooms all of them and asks
// the server for that range at full resolution; a double click goes back to the whole run.
"use strict";

const ptdryCharts = (() => {
  const {el, api} = ptdry;
  window.ptdryCharts = window.ptdryCharts || [];

  // Fractional epochs: epoch e starts at the first step logged with epoch e.
  function epochMap(seriesList) {
    const starts = new Map();
    for (const s of seriesList) {
      s.step.forEach((x, i) => {
        const e = s.epoch[i];
        if (e === null || e === undefined) return;
        if (!starts.has(e) || x < starts.get(e)) starts.set(e, x);
      });
    }
    const epochs = [...starts.keys()].sort((a, b) => a - b);
    if (!epochs.length) return null;
    const len = (i) => {
      if (i + 1 < epochs.length) return Math.max(1, starts.get(epochs[i + 1]) - starts.get(epochs[i]));
      return i > 0 ? len(i - 1) : 1;
    };
    const index = new Map(epochs.map((e, i) => [e, i]));
    return {
      toEpoch(step, epoch) {
        if (epoch === null || epoch === undefined || !index.has(epoch)) return null;
        const i = index.get(epoch);
        return epoch + Math.min(1, (step - starts.get(epoch)) / len(i));
      },
      toStep(x) {
        let i = epochs.findIndex((e) => e > x) - 1;
        if (i < 0) i = x < epochs[0] ? 0 : epochs.length - 1;
        return starts.get(epochs[i]) + (x - epochs[i]) * len(i);
      },
    };
  }

  function smooth(values, weight) {
    if (!weight) return values;
    const out = new Array(values.length);
    let last = 0, n = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || !Number.isFinite(v)) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * v;
      n++;
      out[i] = last / (1 - Math.pow(weight, n));  // debiased, as TensorBoard does
    }
    return out;
  }

  class CurveSet {
    // charts: [{title, series: [{run, metric, label, color}]}]
    constructor(container, charts, options) {
      this.container = container;
      this.specs = charts;
      this.xAxis = "step";
      this.log = false;
      this.smoothing = 0;
      this.range = null;  // [start, end] in steps, or null for the whole runs
      this.maps = new Map();  // run -> epoch map (from the whole run)
      this.data = new Map();  // run -> {metric: series}
      this.plots = [];
      this.syncKey = `ptdry-${Math.random().toString(36).slice(2)}`;
      this.onError = (options && options.onError) || ((e) => console.warn(e));
      this.height = (options && options.height) || 240;
      window.addEventListener("resize", () => this.resize());
    }

    runs() {
      const byRun = new Map();
      for (const c of this.specs) for (const s of c.series) {
        if (!byRun.has(s.run)) byRun.set(s.run, new Set());
        byRun.get(s.run).add(s.metric);
      }
      return byRun;
    }

    width() {
      const w = this.container.clientWidth;
      const perRow = Math.max(1, Math.floor((w + 14) / 474));
      return Math.max(300, Math.floor((w - 14 * (perRow - 1)) / perRow) - 14);
    }

    async load() {
      const points = this.width();
      const fetches = [...this.runs()].map(async ([run, metrics]) => {
        const q = new URLSearchParams({points: String(points)});
        for (const m of metrics) q.append("metric", m);
        if (this.range) { q.set("start", String(Math.floor(this.range[0]))); q.set("end", String(Math.ceil(this.range[1]))); }
        const result = await api(`/api/runs/${encodeURIComponent(run)}/history?${q}`);
        this.data.set(run, result.series);
        if (!this.range) this.maps.set(run, epochMap(Object.values(result.series)));
      });
      await Promise.all(fetches);
    }

    aligned(spec) {
      const parts = [], series = [];
      for (const s of spec.series) {
        const curve = (this.data.get(s.run) || {})[s.metric];
        if (!curve) continue;
        let xs = curve.step;
        if (this.xAxis === "epoch") {
          const map = this.maps.get(s.run);
          xs = curve.step.map((x, i) => (map ? map.toEpoch(x, curve.epoch[i]) : null));
        }
        const pairs = xs.map((x, i) => [x, curve.value[i]]).filter((p) => p[0] !== null).sort((a, b) => a[0] - b[0]);
        let ys = pairs.map((p) => p[1]);
        if (this.log) ys = ys.map((v) => (v !== null && v > 0 ? v : null));
        const x = pairs.map((p) => p[0]);
        if (this.smoothing) {
          parts.push([x, ys]);
          series.push({label: `${s.label} (raw)`, stroke: s.color + "40", width: 1, spanGaps: true, raw: true});
          ys = smooth(ys, this.smoothing);
        }
        parts.push([x, ys]);
        series.push({label: s.label, stroke: s.color, width: 1.6, spanGaps: true, source: curve.source});
      }
      if (!parts.length) return {data: null, series};
      return {data: parts.length === 1 ? parts[0] : uPlot.join(parts), series};
    }

    render() {
      for (const p of this.plots) this.forget(p);
      this.plots = [];
      const width = this.width();
      const boxes = [];
      for (const spec of this.specs) {
        const {data, series} = this.aligned(spec);
        const box = el("div", {class: "chart", "data-title": spec.title}, el("div", {class: "title"}, spec.title));
        boxes.push(box);
        if (!data) { box.append(el("div", {class: "note"}, "no points in this range")); continue; }
        const sources = [...new Set(series.filter((s) => s.source).map((s) => s.source))];
        box.append(el("div", {class: "note"}, sources.join(", ")));
        const opts = {
          width, height: this.height,
          scales: {x: {time: false}, y: {distr: this.log ? 3 : 1}},
          axes: [{label: this.xAxis}, {size: 60}],
          series: [{label: this.xAxis}, ...series.map((s) => ({label: s.label, stroke: s.stroke, width: s.width, spanGaps: true}))],
          cursor: {sync: {key: this.syncKey}, drag: {x: true, y: false, setScale: false},
                   bind: {dblclick: () => () => { this.zoom(null); return null; }}},
          legend: {live: true},
          hooks: {setSelect: [(u) => this.selected(u)]},
        };
        const plot = new uPlot(opts, data, box);
        plot.ptdryTitle = spec.title;
        this.plots.push(plot);
        window.ptdryCharts.push(plot);
      }
      this.container.replaceChildren(...boxes);
    }

    forget(plot) {
      const i = window.ptdryCharts.indexOf(plot);
      if (i >= 0) window.ptdryCharts.splice(i, 1);
      plot.destroy();
    }

    selected(u) {
      if (u.select.width < 4) return;
      let lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
      u.setSelect({left: 0, top: 0, width: 0, height: 0}, false);
      if (this.xAxis === "epoch") {
        const maps = [...this.maps.values()].filter(Boolean);
        if (!maps.length) return;
        lo = Math.min(...maps.map((m) => m.toStep(lo)));
        hi = Math.max(...maps.map((m) => m.toStep(hi)));
      }
      this.zoom([lo, hi]);
    }

    async zoom(range) {
      this.range = range;
      await this.refresh();
    }

    async refresh() {
      try {
        await this.load();
        this.render();
      } catch (e) {
        this.onError(e);
      }
    }

    set(option, value) {
      this[option] = value;
      this.render();
    }

    resize() {
      const width = this.width();
      for (const p of this.plots) p.setSize({width, height: this.height});
    }
  }

  function controls(set) {
    const axis = el("select", {name: "x-axis", onchange: (e) => set.set("xAxis", e.target.value)},
      el("option", {value: "step"}, "step"), el("option", {value: "epoch"}, "epoch"));
    const log = el("input", {type: "checkbox", name: "log-scale", onchange: (e) => set.set("log", e.target.checked)});
    const label = el("span", {class: "mono"}, "0");
    const slider = el("input", {type: "range", name: "smoothing", min: "0", max: "0.99", step: "0.01", value: "0",
      oninput: (e) => { label.textContent = e.target.value; set.set("smoothing", Number(e.target.value)); }});
    return el("div", {class: "chart-controls"},
      el("label", {}, "x axis ", axis),
      el("label", {}, log, " log scale"),
      el("label", {}, "smoothing ", slider, " ", label),
      el("button", {type: "button", onclick: () => set.zoom(null)}, "reset zoom"),
      el("span", {class: "muted"}, "drag on a chart to zoom; double-click to see the whole run"));
  }

  return {CurveSet, controls, epochMap, smooth};
})();
