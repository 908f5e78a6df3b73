// ptdry ui: helpers shared by the pages (plain JavaScript, no build step).
"use strict";

const ptdry = (() => {
  const COLORS = ["#2f6fde", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#a61e4d", "#5c940d", "#d9480f", "#364fc7"];

  // Element builder: el("a", {href: "/x", class: "y"}, "text", child). Text is never parsed as HTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // Replace the children of node, leaving out null and undefined (which the DOM would show as text).
  function fill(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
    return node;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super(body && body.error ? body.error : `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(path, options) {
    const response = await fetch(path, Object.assign({headers: {"Accept": "application/json"}}, options || {}));
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") {
      if (Number.isInteger(value)) return String(value);
      const a = Math.abs(value);
      return a !== 0 && (a < 1e-3 || a >= 1e5) ? value.toExponential(3) : String(Number(value.toPrecision(4)));
    }
    if (typeof value === "boolean") return value ? "true" : "false";
    if (Array.isArray(value) || typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function fmtDate(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.round(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
    const h = Math.floor(s / 3600);
    return h < 48 ? `${h}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }

  function statusBadge(state) {
    return el("span", {class: `status ${state}`}, state);
  }

  async function header(title) {
    const top = el("header", {class: "top"},
      el("a", {class: "brand", href: "/"}, "ptdry"),
      el("a", {href: "/"}, "Runs"),
      el("span", {class: "db"}, ""));
    document.body.prepend(top);
    document.title = title ? `${title} · ptdry` : "ptdry";
    try {
      const info = await api("/api/info");
      top.querySelector(".db").textContent = `${info.db} · ${info.database}${info.allow_edit ? " · editing allowed" : " · read-only"} · ptdry ${info.version || ""}`;
      return info;
    } catch (e) {
      top.querySelector(".db").textContent = `database unavailable: ${e.message}`;
      return {allow_edit: false};
    }
  }

  function showError(container, error) {
    fill(container, el("div", {class: "error-box"}, error.message || String(error)));
  }

  return {COLORS, el, fill, api, ApiError, fmt, fmtDate, fmtDuration, fmtBytes, statusBadge, header, showError};
})();
