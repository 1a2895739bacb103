// First paint before plotly.js: plotly.js is several MB of script and takes seconds to
// evaluate on a slow machine, so pages ship it in an inert block and start it only after the
// first paint. Until then, each chart in view shows a static SVG drawing of the very figure
// Plotly will get (lines, log axes, ticks, vertical event lines); the interactive chart
// replaces it as soon as plotly.js is ready.
window.ES = window.ES || {};
(function (ES) {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  // The one palette (generator/palette.py) comes in the page JSON; this is only a fallback.
  const palette = () => (ES.page && ES.page.palette) || ["#1f77b4", "#e8731a", "#2ca02c", "#d62728"];

  function node(name, attrs, parent) {
    const n = document.createElementNS(NS, name);
    Object.keys(attrs).forEach((k) => n.setAttribute(k, attrs[k]));
    if (parent) parent.appendChild(n);
    return n;
  }

  // Titles reach Plotly HTML-escaped (it renders a subset of HTML); shown here as plain text.
  function plain(text) {
    return String(text || "").replace(/<[^>]*>/g, "").replace(/&lt;/g, "<").replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&");
  }

  function ticks(lo, hi, log) {
    if (log) {
      const out = [];
      for (let e = Math.ceil(lo); e <= Math.floor(hi) && out.length < 12; e++) out.push(e);
      return out.length ? out : [lo];
    }
    const raw = (hi - lo) / 5 || 1;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = mag * (raw / mag >= 5 ? 5 : raw / mag >= 2 ? 2 : 1);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && out.length < 12; v += step) out.push(v);
    return out;
  }

  function label(v, log) {
    if (log) return Math.abs(v) <= 3 ? String(+Math.pow(10, v).toPrecision(3)) : "1e" + v;
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(1) : String(+v.toPrecision(4));
  }

  // An overlay y axis with a fixed range (event lines span [0, 1] on one), or null.
  function overlayAxis(layout, name) {
    const ax = layout["yaxis" + name.slice(1)];
    return ax && ax.overlaying === "y" && ax.range ? ax : null;
  }

  function lineTraces(fig) {
    const L = fig.layout || {};
    return (fig.data || []).filter((t) => (!t.type || t.type === "scatter" || t.type === "scattergl")
      && t.visible !== false && t.visible !== "legendonly" && (!t.xaxis || t.xaxis === "x")
      && (!t.yaxis || t.yaxis === "y" || (overlayAxis(L, t.yaxis) && t.mode === "lines"))
      && t.x && t.y && t.x.length);
  }

  // The extent of the finite values of `arrays` after `f` ([lo, hi], or null).
  function extent(arrays, f) {
    let lo = Infinity, hi = -Infinity;
    arrays.forEach((a) => {
      for (let i = 0; i < a.length; i++) {
        const v = f(a[i]);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    });
    if (!(lo <= hi)) return null;
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    return [lo, hi];
  }

  // Draw `fig` (a Plotly {data, layout}) into `host` as SVG; false if it has nothing to draw.
  function draw(host, fig) {
    const traces = lineTraces(fig);
    if (!traces.length) return false;
    const L = fig.layout || {};
    const xa = L.xaxis || {}, ya = L.yaxis || {};
    const logx = xa.type === "log", logy = ya.type === "log";
    const fx = logx ? (v) => (v > 0 ? Math.log10(v) : NaN) : (v) => (v === null ? NaN : +v);
    const fy = logy ? (v) => (v > 0 ? Math.log10(v) : NaN) : (v) => (v === null ? NaN : +v);
    const main = traces.filter((t) => !t.yaxis || t.yaxis === "y");
    if (!main.length) return false;
    const xr = xa.range || extent(traces.map((t) => t.x), fx);
    let yr = ya.range || extent(main.map((t) => t.y), fy);
    if (!xr || !yr) return false;
    if (!ya.range) { const pad = (yr[1] - yr[0]) * 0.05; yr = [yr[0] - pad, yr[1] + pad]; }
    const legend = L.showlegend !== false && traces.some((t) => t.name && t.showlegend !== false);
    const m = Object.assign({ l: 64, r: 24, t: 8, b: 44 }, L.margin);
    const top = m.t + (legend ? 22 : 0);
    const width = Math.max(200, host.clientWidth || 600), height = L.height || 300;
    const pw = width - m.l - m.r, ph = height - top - m.b;
    const sx = (v) => m.l + ((v - xr[0]) / (xr[1] - xr[0])) * pw;
    const sy = (v) => top + ph - ((v - yr[0]) / (yr[1] - yr[0])) * ph;

    const svg = node("svg", { width: width, height: height, class: "es-preview", role: "img",
      "font-family": "system-ui, sans-serif", "font-size": "11", fill: "#1d2330" });
    node("rect", { x: m.l, y: top, width: pw, height: ph, fill: "#ffffff" }, svg);
    ticks(yr[0], yr[1], logy).forEach((v) => {
      const y = sy(v);
      node("line", { x1: m.l, x2: m.l + pw, y1: y, y2: y, stroke: "#e6e8ef" }, svg);
      node("text", { x: m.l - 6, y: y + 4, "text-anchor": "end" }, svg).textContent = label(v, logy);
    });
    ticks(xr[0], xr[1], logx).forEach((v) => {
      const x = sx(v);
      node("line", { x1: x, x2: x, y1: top, y2: top + ph, stroke: "#e6e8ef" }, svg);
      node("text", { x: x, y: top + ph + 16, "text-anchor": "middle" }, svg).textContent = label(v, logx);
    });
    const title = (a) => plain(a.title && (a.title.text !== undefined ? a.title.text : a.title));
    node("text", { x: m.l + pw / 2, y: height - 6, "text-anchor": "middle" }, svg).textContent = title(xa);
    node("text", { x: 14, y: top + ph / 2, "text-anchor": "middle",
      transform: "rotate(-90 14 " + (top + ph / 2) + ")" }, svg).textContent = title(ya);
    const clip = "es-clip-" + Math.random().toString(36).slice(2);
    node("rect", { x: m.l, y: top, width: pw, height: ph }, node("clipPath", { id: clip }, svg));
    const plot = node("g", { "clip-path": "url(#" + clip + ")" }, svg);
    (L.shapes || []).forEach((s) => {
      if (s.type !== "line" || s.x0 !== s.x1 || (s.xref && s.xref !== "x")) return;
      const x = sx(fx(s.x0));
      node("line", { x1: x, x2: x, y1: top, y2: top + ph, stroke: (s.line && s.line.color) || "#888",
        "stroke-dasharray": "4 3" }, plot);
    });
    let legendX = m.l;
    traces.forEach((t, k) => {
      const colour = (t.line && t.line.color) || (t.marker && typeof t.marker.color === "string" && t.marker.color)
        || palette()[k % palette().length];
      const markersOnly = t.mode === "markers";
      const over = t.yaxis && t.yaxis !== "y" ? overlayAxis(L, t.yaxis).range : null;
      const ty = over ? (v) => top + ph - ((v - over[0]) / (over[1] - over[0])) * ph : (v) => sy(fy(v));
      let d = "", pen = false;
      for (let i = 0; i < t.y.length; i++) {
        const x = fx(t.x[i]), y = t.y[i] === null ? NaN : ty(t.y[i]);
        if (!(x === x && y === y)) { pen = false; continue; }
        d += (pen && !markersOnly ? "L" : "M") + sx(x).toFixed(1) + " " + y.toFixed(1) + (markersOnly ? "h0" : "");
        pen = true;
      }
      node("path", { d: d, fill: "none", stroke: colour, "stroke-linecap": "round", "stroke-linejoin": "round",
        opacity: t.opacity === undefined ? 1 : t.opacity,
        "stroke-width": markersOnly ? 5 : (t.line && t.line.width) || 1.5,
        "stroke-dasharray": t.line && t.line.dash === "dot" ? "2 3" : t.line && t.line.dash ? "6 4" : "none" }, plot);
      if (legend && t.name && t.showlegend !== false && legendX < width - 80) {
        node("line", { x1: legendX, x2: legendX + 18, y1: m.t + 8, y2: m.t + 8, stroke: colour, "stroke-width": 2 }, svg);
        const text = node("text", { x: legendX + 22, y: m.t + 12 }, svg);
        text.textContent = plain(t.name);
        legendX += 34 + 6.5 * text.textContent.length;
      }
    });
    host.replaceChildren(svg);
    return true;
  }

  // The script text of the inert block `#es-plotly`, as a Promise: the text itself, or that
  // text deflated and base64'd (`data-enc`), inflated by the browser's own DecompressionStream
  // (no network). Started as soon as this script runs, so the inflating overlaps the first
  // paint instead of following it.
  let unpacking = null;
  function unpack() {
    if (unpacking) return unpacking;
    const holder = document.getElementById("es-plotly");
    if (!holder || holder.dataset.src || !holder.dataset.enc) {
      unpacking = Promise.resolve(holder && !holder.dataset.src ? holder.textContent : null);
      return unpacking;
    }
    const bin = atob(holder.textContent);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    unpacking = new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream(holder.dataset.enc)))
      .text().catch((err) => { throw new Error("plotly.js could not be unpacked: " + err); });
    return unpacking;
  }
  if (document.getElementById("es-plotly")) unpack();

  // Start plotly.js once, after the next paint; resolves to window.Plotly. The inert block
  // `#es-plotly` holds the script text (its hash is in the page's CSP), that text packed (see
  // unpack), or `data-src` names a shared plotly.js file beside the page.
  let loading = null;
  function loadPlotly() {
    if (loading) return loading;
    loading = new Promise((resolve, reject) => {
      let started = false;
      const start = () => {
        if (started) return;
        started = true;
        if (window.Plotly) { resolve(window.Plotly); return; }
        const holder = document.getElementById("es-plotly");
        const script = document.createElement("script");
        if (holder.dataset.src) {
          script.onload = () => resolve(window.Plotly);
          script.onerror = () => reject(new Error("plotly.js could not be loaded from " + holder.dataset.src));
          script.src = holder.dataset.src;
          document.head.appendChild(script);
          return;
        }
        unpack().then((text) => {
          script.textContent = text;
          document.head.appendChild(script);  // inline: runs now
          holder.textContent = "";
          if (window.Plotly) resolve(window.Plotly);
          else reject(new Error("plotly.js did not start (see the console)"));
        }, reject);
      };
      requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(start, 0)));
      setTimeout(start, 1000);  // no frames come in a background tab
    });
    return loading;
  }

  // Record in `stats[key]` when what was just drawn is on screen, once: the first task after
  // the next frame (a timer set in that frame's rAF runs right after its paint, before the
  // next chart's draw, which the page queues the same way; two rAFs would count that draw too).
  const pending = new WeakMap();
  function markPainted(stats, key) {
    const keys = pending.get(stats) || new Set();
    if (stats[key] !== null || keys.has(key)) return;
    pending.set(stats, keys.add(key));
    requestAnimationFrame(() => setTimeout(() => { stats[key] = performance.now(); }, 0));
  }

  // Preview chart `ch` (resolving its arrays from `store`) unless plotly.js already runs or
  // the chart was drawn; `figure(ch)` builds its Plotly figure.
  async function show(ch, store, figure, stats) {
    if (window.Plotly || ch.card.dataset.drawn) return;
    try {
      if (!ch.spec) ch.spec = await store.resolve(ch.raw);
      if (!window.Plotly && !ch.card.dataset.drawn && draw(ch.el, figure(ch))) {
        ch.card.dataset.preview = "1";
        markPainted(stats, "firstPaint");
      }
    } catch (err) {
      // Only a preview: the real drawing reports what went wrong.
    }
  }

  // Remove the preview of `ch`, before Plotly draws into the same element.
  function clear(ch) {
    if (!ch.card.dataset.preview) return;
    ch.el.replaceChildren();
    delete ch.card.dataset.preview;
  }

  ES.preview = { draw: draw, show: show, clear: clear, loadPlotly: loadPlotly, markPainted: markPainted };
})(window.ES);
