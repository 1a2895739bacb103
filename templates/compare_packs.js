/* epochscope comparison page: the renderers of pack charts (generator/packs/*_compare.py,
 * sweep_charts.py) beyond compare.js' own kinds. compare.js merges ES.compareKinds into its
 * kinds; a renderer gets the chart and returns a Plotly figure, or { html: element } for a
 * chart that is an HTML table. Every user string goes in as text (textContent) or through
 * esc() before Plotly sees it.
 */
(function (ES) {

  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => { if (v !== undefined && v !== "") node.setAttribute(k, v); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const hidden = () => (ES.app && ES.app.state ? ES.app.state.hidden : new Set());

  // kind "table": spec.columns [{key, label, title}], spec.rows [{v, cells: [{text, value, tip}]}];
  // with variantColumn, a first column names each row's variant (its colour swatch beside).
  // A header click sorts by that column (numbers by value, text by text; again: reversed).
  function table(ch) {
    const sp = ch.spec;
    const V = ES.page.variants;
    const wrap = el("div", { class: "table-wrap" });
    const t = el("table", { class: "summary pack-table" });
    const head = el("tr");
    const cols = (sp.variantColumn ? [{ key: "variant", label: "Variant", title: "the compared run" }] : []).concat(sp.columns);
    cols.forEach((c, j) => {
      const th = el("th", { scope: "col", "data-col": c.key, "aria-sort": "none" });
      const b = el("button", { type: "button", class: "sort-btn", title: c.title }, c.label);
      b.addEventListener("click", () => sortRows(t, j, th));
      th.appendChild(b);
      head.appendChild(th);
    });
    t.appendChild(el("thead")).appendChild(head);
    const body = t.appendChild(el("tbody"));
    let shown = 0;
    sp.rows.forEach((r, i) => {
      if (r.v !== null && r.v !== undefined && hidden().has(r.v)) return;
      const tr = el("tr", { "data-v": r.v === null || r.v === undefined ? "" : String(r.v), "data-i": String(i) });
      if (sp.variantColumn) {
        const th = el("th", { scope: "row", "data-sort": V[r.v].label });
        th.appendChild(el("span", { class: "swatch", style: "background: " + V[r.v].color }));
        th.appendChild(document.createTextNode(V[r.v].label));
        tr.appendChild(th);
      }
      r.cells.forEach((c) => {
        const sort = typeof c.value === "number" ? String(c.value) : c.value === null || c.value === undefined ? undefined : String(c.value);
        tr.appendChild(el("td", { "data-sort": sort, title: c.tip }, c.text));
      });
      body.appendChild(tr);
      shown++;
    });
    wrap.appendChild(t);
    ch.card.classList.add("tabular");  // report.css: a table card's plot area has no chart height
    ch.card.dataset.rows = String(shown);
    ch.card.dataset.traces = String(shown);
    return { html: wrap };
  }

  function sortRows(t, j, th) {
    const dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    const body = t.tBodies[0];
    const key = (tr) => {
      const raw = tr.children[j].dataset.sort;
      return raw === undefined ? null : raw;
    };
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === null || y === null) return (x === null) - (y === null);
      const nx = Number(x), ny = Number(y);
      const c = isFinite(nx) && isFinite(ny) && x !== "" && y !== "" ? nx - ny : x.localeCompare(y, undefined, { numeric: true });
      return (dir === "ascending" ? 1 : -1) * (c || Number(a.dataset.i) - Number(b.dataset.i));
    });
    rows.forEach((r) => body.appendChild(r));
    Array.from(th.parentNode.children).forEach((h) => h.setAttribute("aria-sort", h === th ? dir : "none"));
  }

  // kind "effects": the main-effects plot of a sweep, one panel per factor (most important
  // first) on a shared y axis: the mean response at each level, the overall mean dashed, the
  // best level starred.
  function effects(ch) {
    const sp = ch.spec;
    const n = sp.factors.length;
    const gap = n > 1 ? 0.04 : 0;
    const w = (1 - gap * (n - 1)) / n;
    const layout = {
      height: 340, margin: { l: 64, r: 20, t: 34, b: 56 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#ffffff",
      font: { family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 12, color: "#1d2330" },
      hovermode: "closest", hoverlabel: { namelength: -1 }, showlegend: false, shapes: [], annotations: [],
    };
    const data = [];
    let lo = Infinity, hi = -Infinity;
    sp.factors.forEach((f) => f.levels.forEach((l) => { if (l.mean !== null) { lo = Math.min(lo, l.mean); hi = Math.max(hi, l.mean); } }));
    if (sp.overall !== null) { lo = Math.min(lo, sp.overall); hi = Math.max(hi, sp.overall); }
    const pad = hi > lo ? 0.12 * (hi - lo) : Math.max(Math.abs(hi) * 0.05, 1e-3);
    sp.factors.forEach((f, i) => {
      const k = i === 0 ? "" : String(i + 1);
      const x0 = i * (w + gap), x1 = x0 + w;
      layout["xaxis" + k] = { domain: [x0, x1], anchor: "y" + k, type: "category", gridcolor: "#eef0f5",
        zeroline: false, automargin: true, title: { text: esc(f.name), font: { size: 12 } } };
      layout["yaxis" + k] = { anchor: "x" + k, range: [lo - pad, hi + pad], gridcolor: "#e6e8ef", zeroline: false,
        showticklabels: i === 0, title: i === 0 ? { text: "mean " + esc(sp.response) } : undefined };
      if (i) layout["yaxis" + k].matches = "y";
      const labels = f.levels.map((l) => esc(l.label));
      const hover = f.levels.map((l) => esc(f.name) + " = " + esc(l.label) + "<br>mean " + esc(sp.response) + " " +
        (l.mean === null ? "–" : l.mean.toPrecision(4)) + " over " + l.n + " run" + (l.n === 1 ? "" : "s") +
        (l.sn === null ? "" : "<br>S/N " + l.sn.toFixed(2) + " dB"));
      data.push({ type: "scatter", mode: "lines+markers", x: labels, y: f.levels.map((l) => l.mean),
        xaxis: "x" + k, yaxis: "y" + k, line: { color: "#3b5bdb", width: 2 }, marker: { size: 8, color: "#3b5bdb" },
        text: hover, hovertemplate: "%{text}<extra></extra>" });
      const best = f.levels.findIndex((l) => l.label === f.best);
      if (best >= 0) {
        data.push({ type: "scatter", mode: "markers", x: [labels[best]], y: [f.levels[best].mean], xaxis: "x" + k,
          yaxis: "y" + k, marker: { symbol: "star", size: 16, color: "#d62728", line: { color: "#fff", width: 1 } },
          hovertemplate: "best level: " + esc(f.name) + " = " + esc(f.best) + "<extra></extra>" });
      }
      if (sp.overall !== null) {
        layout.shapes.push({ type: "line", xref: "x" + k + " domain", yref: "y" + k, x0: 0, x1: 1, y0: sp.overall,
          y1: sp.overall, line: { color: "#8a90a0", width: 1, dash: "dash" } });
      }
      layout.annotations.push({ xref: "paper", yref: "paper", x: (x0 + x1) / 2, y: 1, yanchor: "bottom", showarrow: false,
        font: { size: 11 }, text: "<b>" + esc(f.name) + "</b>  rank " + f.rank + ", effect " +
          (f.effect === null ? "–" : f.effect.toPrecision(3)) });
    });
    ch.card.dataset.traces = String(data.length);
    return { data: data, layout: layout };
  }

  ES.compareKinds = Object.assign(ES.compareKinds || {}, { table: table, effects: effects });
})(window.ES = window.ES || {});
