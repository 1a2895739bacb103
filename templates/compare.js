/* epochscope comparison page: state, groups and bands, controls, chart renderers, lazy
 * drawing, URL hash.
 *
 * Arrays are decoded by report_decode.js (ES.ArrayStore). State: the grouping keys (runs
 * sharing their values form a group; seeds are pooled), the band (± std, min–max, ± s.e.),
 * whether member runs are drawn, the x axis of the time series ("epoch" or "turn"), per-chart
 * log scales and options, the table's rows (runs or groups) and sort, the hidden runs; it
 * lives in the URL hash, so a copied link reopens the same view. A group's line and band are
 * computed here from each run's embedded series with the rules of generator/compare/stats.py
 * (common grid, interpolation only inside each run's range), so regrouping needs no rebuild.
 * Charts draw when they scroll into view; a state change redraws the visible ones and marks
 * the others dirty. Every user string passes through esc() before Plotly sees it (Plotly
 * renders a subset of HTML in names, hover text and titles) and reaches the DOM as text.
 */
(function (ES) {
  const page = (ES.page = JSON.parse(document.getElementById("es-data").textContent));
  const store = new ES.ArrayStore(page.arrays);
  const CONFIG = { displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
    toImageButtonOptions: { format: "png", scale: 2 } };
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const V = page.variants;

  const KEYS = page.keys || [];
  const GRID = page.gridLimit || 400;
  const LEGEND_MAX = 12;  // more groups than this: no legend (the group list names them)
  const st = { align: "epoch", logy: new Set(), sel: {}, sort: null, hidden: new Set(),
    groupBy: (page.groupBy || []).slice(), band: "std", members: false, rows: "runs", varMetric: 0,
    focus: null };  // focus: the run a report linked here from (#run=<its report's href>)
  let groupCache = null;
  const charts = {};
  // firstPaint: the first chart is on screen (a preview or the real one); firstInteractive: the
  // first Plotly chart is (see chart_preview.js).
  const stats = { draws: 0, appStart: performance.now(), firstDraw: null, firstPaint: null,
    firstInteractive: null };

  Object.keys(page.charts).forEach((name) => {
    const c = page.charts[name];
    const card = document.getElementById("c-" + name);
    if (!card) return;
    charts[name] = Object.assign({}, c, { name: name, card: card, el: $(".plot", card), raw: c.spec, spec: null,
      visible: false, dirty: true, busy: Promise.resolve(), queued: false });
    if (c.logy) st.logy.add(name);
  });

  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // ------------------------------------------------------------------ state <-> URL hash
  function readHash() {
    const h = new URLSearchParams(location.hash.replace(/^#/, ""));
    const out = {};
    if (h.has("x")) out.align = h.get("x") === "turn" ? "turn" : "epoch";
    if (h.has("logy")) out.logy = new Set(h.get("logy").split(",").filter((n) => n in charts));
    if (h.has("sel")) {
      out.sel = {};
      h.get("sel").split(",").forEach((pair) => {
        const [n, i] = pair.split(":");
        if (n in charts && isFinite(Number(i))) out.sel[n] = Number(i);
      });
    }
    if (h.has("sort")) {
      const [col, dir] = h.get("sort").split(":");
      if (page.columns.indexOf(col) >= 0) out.sort = { col: col, dir: dir === "desc" ? "desc" : "asc" };
    }
    if (h.has("hide")) out.hidden = new Set(h.get("hide").split(",").filter((x) => x !== "" && Number(x) in V).map(Number));
    if (h.has("g")) out.groupBy = h.get("g").split(",").filter((k) => KEYS.indexOf(k) >= 0);
    if (h.has("band")) out.band = ["std", "minmax", "sem"].indexOf(h.get("band")) >= 0 ? h.get("band") : "std";
    if (h.has("members")) out.members = h.get("members") === "1";
    if (h.has("rows")) out.rows = h.get("rows") === "groups" ? "groups" : "runs";
    if (h.has("run")) {
      const want = h.get("run");
      const v = V.findIndex((x) => !!x.href && x.href.split("#")[0] === want);
      if (v >= 0) out.focus = v;
    }
    return out;
  }

  function writeHash() {
    const h = new URLSearchParams();
    h.set("x", st.align);
    h.set("logy", Array.from(st.logy).join(","));
    const sel = Object.keys(st.sel).filter((n) => st.sel[n]).map((n) => n + ":" + st.sel[n]);
    if (sel.length) h.set("sel", sel.join(","));
    if (st.sort) h.set("sort", st.sort.col + ":" + st.sort.dir);
    if (st.hidden.size) h.set("hide", Array.from(st.hidden).join(","));
    h.set("g", st.groupBy.join(","));
    h.set("band", st.band);
    if (st.members) h.set("members", "1");
    if (st.rows === "groups") h.set("rows", "groups");
    if (st.focus !== null && V[st.focus].href) h.set("run", V[st.focus].href.split("#")[0]);
    const text = "#" + h.toString().replace(/%2C/g, ",").replace(/%3A/g, ":");
    if (location.hash !== text) history.replaceState(null, "", text);
  }

  // ------------------------------------------------------------------ figures
  function baseLayout(extra) {
    return Object.assign({
      height: 320,
      margin: { l: 64, r: 20, t: 10, b: 46 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#ffffff",
      font: { family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 12, color: "#1d2330" },
      hovermode: "closest",
      hoverlabel: { namelength: -1 },
      showlegend: false,
      xaxis: { zeroline: false, automargin: true, gridcolor: "#e6e8ef" },
      yaxis: { zeroline: false, automargin: true, gridcolor: "#e6e8ef", exponentformat: "power" },
      shapes: [],
      annotations: [],
    }, extra || {});
  }

  function optionIndex(ch) {
    const n = (ch.spec.options || []).length;
    const i = st.sel[ch.name] || 0;
    return Math.max(0, Math.min(n - 1, i));
  }

  function width(v) {
    return v === st.focus ? 3.4 : V[v].emph ? 2.6 : 1.5;
  }

  // The run a report linked here from: its row marked and scrolled to, its lines drawn widest.
  function markFocus(announce) {
    $$("#summary tbody tr[data-v]").forEach((tr) => {
      const on = Number(tr.dataset.v) === st.focus;
      tr.classList.toggle("is-focus", on);
      if (on) tr.setAttribute("aria-current", "true"); else tr.removeAttribute("aria-current");
    });
    const g = st.focus === null ? null : groupOf()[st.focus];
    $$("#groups-table tbody tr[data-g]").forEach((tr) => tr.classList.toggle("is-focus", !!g && tr.dataset.g === String(g.id)));
    if (st.focus === null) return;
    const row = $("#summary tbody tr[data-v=\"" + st.focus + "\"]");
    if (row && st.rows === "runs") row.scrollIntoView({ block: "nearest" });
    if (announce) toast("Marked: " + V[st.focus].label + (g ? " (group " + g.label + ")" : " (hidden)"));
  }

  // ------------------------------------------------------------------ groups and bands
  // The groups of the current state: runs (not hidden) sharing the values of st.groupBy.
  function groups() {
    if (groupCache) return groupCache;
    const idx = st.groupBy.map((k) => KEYS.indexOf(k)).filter((i) => i >= 0);
    const by = new Map(), out = [];
    V.forEach((v, i) => {
      if (st.hidden.has(i)) return;
      const vals = idx.map((j) => v.cfg[j]);
      const key = JSON.stringify(vals);
      let g = by.get(key);
      if (!g) {
        g = { label: idx.length ? idx.map((j, n) => KEYS[j] + "=" + vals[n]).join(", ") : "all runs", members: [] };
        by.set(key, g);
        out.push(g);
      }
      g.members.push(i);
    });
    out.forEach((g, n) => { g.id = n; g.color = V[g.members[0]].color; });
    groupCache = out;
    return out;
  }

  function groupOf() {
    const of = new Array(V.length).fill(null);
    groups().forEach((g) => g.members.forEach((v) => { of[v] = g; }));
    return of;
  }

  // The grid a group is aligned on (stats.common_grid): the union of its runs' epochs when it
  // has at most GRID points, else GRID even steps from the first epoch to the last.
  function commonGrid(xs) {
    let lo = Infinity, hi = -Infinity, over = false;
    const seen = new Set();
    xs.forEach((x) => {
      for (let i = 0; i < x.length; i++) {
        const e = x[i];
        if (e < lo) lo = e;
        if (e > hi) hi = e;
        if (!over) { seen.add(e); if (seen.size > GRID) over = true; }
      }
    });
    if (!(hi >= lo)) return new Float64Array(0);
    if (!over) return Float64Array.from(seen).sort();
    const g = new Float64Array(GRID), step = (hi - lo) / (GRID - 1);
    for (let i = 0; i < GRID; i++) g[i] = lo + step * i;
    g[GRID - 1] = hi;
    return g;
  }

  // Values of (x, y) on `grid` (stats.align): linear between finite points, only inside the
  // run's first and last finite point, NaN outside (never extrapolated).
  function alignTo(x, y, grid) {
    const xf = [], yf = [];
    for (let i = 0; i < y.length; i++) if (isFinite(y[i]) && isFinite(x[i])) { xf.push(x[i]); yf.push(y[i]); }
    const out = new Float64Array(grid.length).fill(NaN);
    const n = xf.length;
    if (!n) return out;
    let k = 0;
    for (let g = 0; g < grid.length; g++) {
      const e = grid[g];
      if (e < xf[0] || e > xf[n - 1]) continue;
      while (k < n - 2 && xf[k + 1] < e) k++;
      if (n === 1 || e <= xf[k]) { out[g] = yf[k]; continue; }
      const x0 = xf[k], x1 = xf[k + 1];
      out[g] = x1 === x0 ? yf[k + 1] : yf[k] + (yf[k + 1] - yf[k]) * (e - x0) / (x1 - x0);
    }
    return out;
  }

  // A group's mean and band (stats.band): per grid point the runs covering it, their mean,
  // sample std (N − 1), standard error, min and max.
  function band(series) {
    const grid = commonGrid(series.map((s) => s[0]));
    const G = grid.length, rows = series.map((s) => alignTo(s[0], s[1], grid));
    const n = new Int32Array(G), mean = new Float64Array(G).fill(NaN), std = new Float64Array(G).fill(NaN);
    const sem = new Float64Array(G).fill(NaN), lo = new Float64Array(G).fill(NaN), hi = new Float64Array(G).fill(NaN);
    for (let g = 0; g < G; g++) {
      let c = 0, sum = 0, mn = Infinity, mx = -Infinity;
      for (const r of rows) { const y = r[g]; if (y === y) { c++; sum += y; if (y < mn) mn = y; if (y > mx) mx = y; } }
      n[g] = c;
      if (!c) continue;
      const m = sum / c;
      mean[g] = m; lo[g] = mn; hi[g] = mx;
      if (c > 1) {
        let ss = 0;
        for (const r of rows) { const y = r[g]; if (y === y) ss += (y - m) * (y - m); }
        std[g] = Math.sqrt(ss / (c - 1));
        sem[g] = std[g] / Math.sqrt(c);
      }
    }
    return { grid: grid, n: n, mean: mean, std: std, sem: sem, lo: lo, hi: hi };
  }

  function edges(b, mode, log) {
    const G = b.grid.length, low = new Float64Array(G), high = new Float64Array(G);
    for (let g = 0; g < G; g++) {
      if (mode === "minmax") { low[g] = b.lo[g]; high[g] = b.hi[g]; continue; }
      const d = mode === "sem" ? b.sem[g] : b.std[g];
      low[g] = b.mean[g] - d; high[g] = b.mean[g] + d;
      if (log && !(low[g] > 0)) low[g] = b.lo[g];  // a log axis cannot show an edge at or below 0
    }
    return [low, high];
  }

  function rgba(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16 & 255) + "," + (n >> 8 & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  const BAND_NAME = { std: "± 1 std", minmax: "min–max", sem: "± 1 s.e." };

  // Overlays: per group (and role) one mean line with a band, a group of one run as that
  // run's line; x shifted by each run's turn when aligned; member runs on demand.
  function overlay(ch) {
    const sp = ch.spec;
    const opt = sp.options[optionIndex(ch)];
    const aligned = st.align === "turn";
    const log = st.logy.has(ch.name);
    const data = [], notAligned = new Set();
    const byV = new Map(), roles = [];
    opt.traces.forEach((t) => {
      if (!byV.has(t.v)) byV.set(t.v, []);
      byV.get(t.v).push(t);
      if (roles.indexOf(t.role || "") < 0) roles.push(t.role || "");
    });
    const gs = groups().filter((g) => g.members.some((v) => byV.has(v)));
    const legend = gs.length <= LEGEND_MAX;
    const xLabel = aligned ? "turn %{x:+.0f}" : "epoch %{x:.0f}";
    let bands = 0, singles = 0;
    gs.forEach((g) => {
      let named = false;
      roles.forEach((role) => {
        const members = [];
        g.members.forEach((v) => (byV.get(v) || []).forEach((t) => {
          if ((t.role || "") !== role) return;
          const turn = V[v].turn;
          if (aligned && (turn === null || turn === undefined)) { notAligned.add(v); return; }
          members.push({ v: v, t: t, shift: aligned ? turn : 0 });
        }));
        if (!members.length) return;
        const dash = members[0].t.dash || "solid";
        const suffix = role ? " · " + role : "";
        const showleg = legend && !named;
        named = true;
        const shifted = (m) => (m.shift ? Float64Array.from(m.t.x.data, (e) => e - m.shift) : m.t.x.data);
        if (members.length === 1) {
          const m = members[0], label = (g.members.length === 1 ? V[m.v].label : g.label + " (N=1)") + suffix;
          singles++;
          data.push({ type: "scatter", mode: "lines", x: shifted(m), y: m.t.y.data, name: esc(g.label + " (N=1)"),
            line: { color: g.color, width: width(m.v), dash: dash }, legendgroup: "g" + g.id, showlegend: showleg,
            connectgaps: false, esRun: m.v, esShift: m.shift,
            hovertemplate: "%{y:.4g} at " + xLabel + "<extra>" + esc(label) + "</extra>" });
          return;
        }
        bands++;
        const b = band(members.map((m) => [shifted(m), m.t.y.data]));
        const [low, high] = edges(b, st.band, log);
        const grp = "g" + g.id;
        data.push({ type: "scatter", mode: "lines", x: b.grid, y: low, line: { width: 0, color: g.color },
          hoverinfo: "skip", showlegend: false, legendgroup: grp, connectgaps: false, esBand: "low" });
        data.push({ type: "scatter", mode: "lines", x: b.grid, y: high, line: { width: 0, color: g.color },
          fill: "tonexty", fillcolor: rgba(g.color, 0.2), hoverinfo: "skip", showlegend: false, legendgroup: grp,
          connectgaps: false, esBand: "high" });
        data.push({ type: "scatter", mode: "lines", x: b.grid, y: b.mean, customdata: Array.from(b.n),
          name: esc(g.label + " (N=" + members.length + ")"), line: { color: g.color, width: 2.2, dash: dash },
          legendgroup: grp, showlegend: showleg, connectgaps: false, esGroup: g.id,
          hovertemplate: "mean %{y:.4g} of %{customdata} runs at " + xLabel + "<extra>" +
            esc(g.label + " (N=" + members.length + ")" + suffix) + "</extra>" });
        if (st.members) {
          members.forEach((m) => data.push({ type: "scatter", mode: "lines", x: shifted(m), y: m.t.y.data,
            line: { color: g.color, width: 0.8, dash: dash }, opacity: 0.45, showlegend: false, legendgroup: grp,
            connectgaps: false, esRun: m.v, esShift: m.shift,
            hovertemplate: "%{y:.4g} at " + xLabel + "<extra>" + esc(V[m.v].label + suffix) + "</extra>" }));
        }
      });
    });
    const layout = baseLayout();
    layout.xaxis.title = { text: aligned ? "epochs relative to each run's turn" : "epoch" };
    layout.yaxis.title = { text: esc(sp.options.length > 1 ? opt.label : sp.yTitle || opt.label) };
    layout.yaxis.type = log ? "log" : "linear";
    if (sp.yRange && layout.yaxis.type === "linear") layout.yaxis.range = sp.yRange;
    if (layout.yaxis.type === "log") decades(layout.yaxis, data);
    if (legend) {
      layout.showlegend = true;
      layout.legend = { orientation: "v", x: 1.01, y: 1, font: { size: 11 } };
      layout.margin = Object.assign({}, layout.margin, { r: 10 });
    }
    if (aligned) {
      layout.shapes.push({ type: "line", xref: "x", yref: "paper", x0: 0, x1: 0, y0: 0, y1: 1,
        line: { color: "#d62728", width: 1, dash: "dash" } });
    } else if (gs.length <= LEGEND_MAX) {
      gs.forEach((g) => {
        if (g.members.length !== 1) return;
        const v = V[g.members[0]];
        if (v.turn === null || v.turn === undefined) return;
        layout.shapes.push({ type: "line", xref: "x", yref: "paper", x0: v.turn, x1: v.turn, y0: 0, y1: 1,
          line: { color: v.color, width: 1, dash: "dot" }, opacity: 0.6 });
      });
    }
    const missing = opt.missing ? "No data for this series: " + opt.missing + ". " : "";
    const cannot = notAligned.size ? "Not alignable (no turn), not drawn in this view: " + listRuns(notAligned) + ". " : "";
    const many = legend ? "" : gs.length + " groups: hover a line for its group (the legend would hide the chart). ";
    const bandNote = bands ? "Bands: " + BAND_NAME[st.band] + " over the runs of each group. " : "";
    const oneNote = singles && bands ? "Groups of one run are drawn as that run's line, without a band. " : "";
    setAlignNote(ch, cannot + missing + many + bandNote + oneNote);
    ch.card.dataset.traces = String(data.length);
    ch.card.dataset.bands = String(bands);
    return { data: data, layout: layout };
  }

  // Names of runs in a note: a few, then how many more.
  function listRuns(set) {
    const ids = Array.from(set);
    const shown = ids.slice(0, 5).map((v) => V[v].label + " (" + V[v].turnReason + ")").join("; ");
    return shown + (ids.length > 5 ? " and " + (ids.length - 5) + " more" : "");
  }

  // Initial against best value, one point per run coloured by its group.
  function scatter(ch) {
    const sp = ch.spec;
    const opt = sp.options[optionIndex(ch)];
    const of = groupOf();
    const by = new Map();
    opt.runs.forEach((v, i) => {
      const g = of[v];
      if (!g) return;
      if (!by.has(g)) by.set(g, []);
      by.get(g).push(i);
    });
    const data = [];
    const legend = by.size <= LEGEND_MAX;
    Array.from(by.keys()).sort((a, b) => a.id - b.id).forEach((g) => {
      const idx = by.get(g);
      data.push({ type: "scatter", mode: "markers", x: idx.map((i) => opt.x[i]), y: idx.map((i) => opt.y[i]),
        customdata: idx.map((i) => [opt.runs[i], opt.bestEpoch[i]]), text: idx.map((i) => esc(V[opt.runs[i]].label)),
        name: esc(g.label + " (N=" + idx.length + ")"), showlegend: legend, esPoints: true,
        marker: { color: g.color, size: 8, line: { color: "#fff", width: 1 } },
        hovertemplate: "%{text}<br>initial %{x:.4g}, best %{y:.4g} at epoch %{customdata[1]}<extra></extra>" });
    });
    const layout = baseLayout({ height: 380 });
    layout.xaxis.title = { text: "initial " + esc(opt.label) };
    layout.yaxis.title = { text: "best " + esc(opt.label) };
    layout.margin.t = 30;
    if (legend) { layout.showlegend = true; layout.legend = { x: 1.01, y: 1, font: { size: 11 } }; }
    layout.annotations.push({ xref: "paper", yref: "paper", x: 0, y: 1.06, xanchor: "left", showarrow: false,
      font: { size: 12 }, text: esc(opt.stats) });
    setAlignNote(ch, "");
    ch.card.dataset.traces = String(data.length);
    ch.card.dataset.stats = opt.stats;
    return { data: data, layout: layout };
  }

  // On a log axis spanning more than a decade, label the decades only (no 2..9 clutter).
  function decades(axis, data) {
    let lo = Infinity, hi = -Infinity;
    data.forEach((t) => { for (const y of t.y) if (y > 0) { if (y < lo) lo = y; if (y > hi) hi = y; } });
    if (hi / lo > 20) axis.dtick = 1;
  }

  function setAlignNote(ch, text) {
    const note = $(".align-note", ch.card);
    if (!note) return;
    note.textContent = text;
    note.hidden = !text;
  }

  // Two variants: B − A on common epochs (or common offsets from the turn when aligned).
  function difference(ch) {
    const sp = ch.spec;
    const opt = sp.options[optionIndex(ch)];
    const aligned = st.align === "turn";
    const d = aligned ? opt.rel : opt.raw;
    const a = V[sp.a], b = V[sp.b];
    const label = b.label + " − " + a.label;
    const data = [];
    if (d) {
      data.push({ type: "scatter", mode: "lines", x: d.x.data, y: d.y.data, name: esc(label),
        line: { color: b.color, width: 1.6 },
        hovertemplate: "%{y:.4g} at " + (aligned ? "turn %{x:+d}" : "epoch %{x}") + "<extra>" + esc(label) + "</extra>" });
    }
    const layout = baseLayout();
    layout.xaxis.title = { text: aligned ? "epochs relative to each run's turn" : "epoch" };
    layout.yaxis.title = { text: esc(opt.yTitle) };
    layout.yaxis.zeroline = true;
    layout.yaxis.zerolinecolor = "#8a90a0";
    let note = "";
    if (!d) {
      note = aligned ? (sp.noTurn.length ? "Not alignable (no turn): " + sp.noTurn.join(", ") + "."
        : "No common offsets from the turn for this series.") : "No common epochs for this series.";
    }
    setAlignNote(ch, note);
    ch.card.dataset.traces = String(data.length);
    return { data: data, layout: layout };
  }

  function column(arr, j) {
    const cols = arr.shape[1] || 1, n = arr.shape[0], out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = arr.data[i * cols + j];
    return out;
  }

  // Shared-basis trajectories: one path per variant in the chosen basis and projection.
  function paths(ch) {
    const sp = ch.spec;
    const opt = sp.options[optionIndex(ch)];
    const group = sp.groups[opt.group];
    const [px, py] = opt.proj;
    const data = [];
    group.runs.forEach((r) => {
      if (st.hidden.has(r.v)) return;
      const v = V[r.v];
      const x = column(r.pc, px), y = column(r.pc, py);
      const n = x.length;
      data.push({ type: "scatter", mode: "lines+markers", x: x, y: y, customdata: r.epochs.data, name: esc(v.label),
        line: { color: v.color, width: width(r.v) }, marker: { size: 3, color: v.color },
        hovertemplate: "epoch %{customdata}<extra>" + esc(v.label) + "</extra>" });
      data.push({ type: "scatter", mode: "markers", x: [x[0], x[n - 1]], y: [y[0], y[n - 1]], hoverinfo: "skip",
        marker: { symbol: ["circle", "square"], size: 9, color: v.color, line: { color: "#fff", width: 1 } } });
      if (px === 1 && py === 2 && r.cross.length) {
        data.push({ type: "scatter", mode: "markers", x: r.cross.map((c) => c[0]), y: r.cross.map((c) => c[1]),
          marker: { symbol: "x-thin-open", size: 11, color: v.color, line: { width: 2, color: v.color } },
          hovertemplate: "self-crossing<extra>" + esc(v.label) + "</extra>" });
      }
    });
    const pct = (k) => (group.evr[k] !== undefined ? " (" + (100 * group.evr[k]).toFixed(1) + "% of variance)" : "");
    const layout = baseLayout({ height: 460 });
    layout.xaxis.title = { text: "PC" + (px + 1) + pct(px) };
    layout.yaxis.title = { text: "PC" + (py + 1) + pct(py) };
    ch.card.dataset.traces = String(data.length);
    return { data: data, layout: layout };
  }

  // Small multiples: one subplot per variant in one figure.
  function multiples(ch) {
    const sp = ch.spec;
    const panels = sp.panels.filter((p) => !st.hidden.has(p.v));
    const w = ch.el.clientWidth || 1000;
    const cols = Math.max(1, Math.min(panels.length, Math.floor(w / 240) || 1));
    const rows = Math.max(1, Math.ceil(panels.length / cols));
    const rowH = 190;
    const layout = baseLayout({ height: rows * rowH + 20, margin: { l: 44, r: 12, t: 6, b: 26 } });
    delete layout.xaxis; delete layout.yaxis;
    const data = [];
    const gx = 0.045 / cols * 4, gy = 30 / (rows * rowH);
    panels.forEach((p, i) => {
      const v = V[p.v];
      const c = i % cols, r = Math.floor(i / cols);
      const k = i === 0 ? "" : String(i + 1);
      const xd = [c / cols + (c ? gx / 2 : 0), (c + 1) / cols - (c < cols - 1 ? gx / 2 : 0)];
      const yd = [1 - (r + 1) / rows, 1 - r / rows - gy];
      layout["xaxis" + k] = { domain: xd, anchor: "y" + k, gridcolor: "#eef0f5", zeroline: false, tickfont: { size: 10 } };
      layout["yaxis" + k] = { domain: [Math.max(0, yd[0]), Math.max(yd[0] + 0.01, yd[1])], anchor: "x" + k,
        gridcolor: "#eef0f5", zeroline: false, tickfont: { size: 10 }, exponentformat: "power" };
      const xa = "x" + k, ya = "y" + k;
      if (sp.mode === "path") {
        const x = p.x.data, y = p.y.data, n = x.length;
        data.push({ type: "scatter", mode: "lines", x: x, y: y, xaxis: xa, yaxis: ya, customdata: p.epochs.data,
          line: { color: v.color, width: 1.5 }, hovertemplate: "epoch %{customdata}<extra>" + esc(v.label) + "</extra>" });
        data.push({ type: "scatter", mode: "markers", x: [x[0], x[n - 1]], y: [y[0], y[n - 1]], xaxis: xa, yaxis: ya,
          hoverinfo: "skip", marker: { symbol: ["circle", "square"], size: 7, color: v.color } });
        if (p.cross.length) {
          data.push({ type: "scatter", mode: "markers", x: p.cross.map((q) => q[0]), y: p.cross.map((q) => q[1]),
            xaxis: xa, yaxis: ya, marker: { symbol: "x-thin-open", size: 10, line: { width: 2, color: "#1d2330" } },
            hovertemplate: "self-crossing<extra>" + esc(v.label) + "</extra>" });
        }
      } else {
        const keys = p.keys ? p.keys.data : null;
        const colors = keys ? Array.from(keys, (m) => (m ? v.color : "#c5cad6")) : v.color;
        data.push({ type: "bar", x: p.x.data, y: p.y.data, xaxis: xa, yaxis: ya, marker: { color: colors },
          hovertemplate: "k = %{x}: %{y:.4g}<extra>" + esc(v.label) + "</extra>" });
      }
      layout.annotations.push({ xref: "paper", yref: "paper", x: (xd[0] + xd[1]) / 2, y: yd[1], yanchor: "bottom",
        xanchor: "center", showarrow: false, font: { size: 11 },
        text: "<b>" + esc(v.label) + "</b>  " + esc(p.title) });
    });
    ch.card.dataset.traces = String(data.length);
    return { data: data, layout: layout };
  }

  // Pack charts' kinds come from compare_packs.js; a figure with `html` is an element, not Plotly's.
  const KINDS = Object.assign({ overlay: overlay, scatter: scatter, difference: difference, paths: paths,
    multiples: multiples }, ES.compareKinds || {});

  // ------------------------------------------------------------------ drawing
  function draw(ch) {
    ch.busy = ch.busy.then(async () => {
      if (!ch.spec) ch.spec = await store.resolve(ch.raw);
      ch.dirty = false;
      await ES.preview.loadPlotly();
      const fig = figure(ch);
      ch.fig = null;  // Plotly owns it now
      ES.preview.clear(ch);
      if (fig.html) ch.el.replaceChildren(fig.html);
      else {
        await Plotly.react(ch.el, fig.data, fig.layout, CONFIG);
        if (!ch.clicks && ch.el.on) { ch.el.on("plotly_click", onClick); ch.clicks = true; }
      }
      stats.draws++;
      if (stats.firstDraw === null) stats.firstDraw = performance.now();
      ES.preview.markPainted(stats, "firstPaint");
      ES.preview.markPainted(stats, "firstInteractive");
      ch.card.dataset.drawn = String(stats.draws);
    }).catch((err) => {
      console.error("epochscope: chart " + ch.name + " failed:", err);
      ch.card.dataset.drawn = "error";
      ch.el.textContent = "This chart could not be drawn: " + err.message;
    });
    return ch.busy;
  }

  // A chart's figure for the current state; the preview's figure is handed on to the first
  // Plotly drawing when the state has not changed in between (bands are computed once).
  function figure(ch) {
    const key = JSON.stringify([optionIndex(ch), st.align, st.groupBy, Array.from(st.hidden), st.band, st.members,
      st.logy.has(ch.name), ch.el.clientWidth]);
    if (ch.fig && ch.figKey === key) return ch.fig;
    ch.fig = KINDS[ch.kind](ch);
    ch.figKey = key;
    return ch.fig;
  }

  // Before plotly.js runs: a static drawing of the chart's figure (see chart_preview.js).
  const preview = (ch) => ES.preview.show(ch, store, figure, stats);

  // Redraw the visible charts `which` selects; mark the others dirty.
  function refresh(which) {
    const jobs = [];
    Object.values(charts).forEach((ch) => {
      if (ch.status !== "ok" || !which(ch)) return;
      if (ch.visible && ch.card.dataset.drawn) jobs.push(draw(ch));
      else ch.dirty = true;
    });
    return Promise.all(jobs);
  }

  // ------------------------------------------------------------------ drill-down
  // Open run `v`'s report at `epoch` (the report reads #epoch=N).
  function openRun(v, epoch) {
    const href = V[v] && V[v].href;
    if (!href) { toast("No report link for " + V[v].label + ": the site build (epochscope build) or --reports gives them"); return null; }
    const url = href.split("#")[0] + (epoch !== null && epoch !== undefined && isFinite(epoch) ? "#epoch=" + Math.round(epoch) : "");
    ES.app.opened = url;
    location.assign(url);
    return url;
  }

  function onClick(ev) {
    const p = ev && ev.points && ev.points[0];
    if (!p) return;
    const t = p.data || {};
    if (t.esPoints) { openRun(p.customdata[0], p.customdata[1]); return; }
    if (t.esRun !== undefined) { openRun(t.esRun, Number(p.x) + (t.esShift || 0)); return; }
    if (t.esGroup !== undefined) toast("This is the mean of a group: switch on “members” and click one run's line to open its report");
  }

  // ------------------------------------------------------------------ state changes
  function regroup() {
    groupCache = null;
    renderGroupTables();
    syncRunList();
    return refresh((ch) => ch.kind === "overlay" || ch.kind === "scatter");
  }

  function setGroupBy(keys) {
    st.groupBy = KEYS.filter((k) => keys.indexOf(k) >= 0);
    sync(); writeHash();
    return regroup();
  }

  function setBand(mode) {
    st.band = ["std", "minmax", "sem"].indexOf(mode) >= 0 ? mode : "std";
    sync(); writeHash();
    return refresh((ch) => ch.kind === "overlay");
  }

  function toggleMembers(on) {
    st.members = on === undefined ? !st.members : !!on;
    sync(); writeHash();
    return refresh((ch) => ch.kind === "overlay");
  }

  function setRows(mode) {
    st.rows = mode === "groups" ? "groups" : "runs";
    sync(); writeHash();
  }

  function setAlign(a) {
    a = a === "turn" ? "turn" : "epoch";
    if (a === st.align) { sync(); return Promise.resolve(); }
    st.align = a; sync(); writeHash();
    return refresh((ch) => ch.alignable);
  }

  function toggleLog(name) {
    if (st.logy.has(name)) st.logy.delete(name); else st.logy.add(name);
    sync(); writeHash();
    return refresh((ch) => ch.name === name);
  }

  function select(name, i) {
    st.sel[name] = Number(i) || 0;
    sync(); writeHash();
    return refresh((ch) => ch.name === name);
  }

  function toggleVariant(v, shown) {
    if (shown === undefined) shown = st.hidden.has(v);
    if (shown) st.hidden.delete(v); else st.hidden.add(v);
    sync(); writeHash();
    return regroupAll();
  }

  function setHidden(ids, hidden) {
    ids.forEach((v) => { if (hidden) st.hidden.add(v); else st.hidden.delete(v); });
    sync(); writeHash();
    return regroupAll();
  }

  function regroupAll() {
    groupCache = null;
    renderGroupTables();
    syncRunList();
    return refresh(() => true);
  }

  // Sort the summary table by column `col` (missing values always last).
  function sortBy(col, dir) {
    const head = $$("#summary thead th");
    const idx = head.findIndex((th) => th.dataset.col === col);
    if (idx < 0) return;
    if (!dir) dir = st.sort && st.sort.col === col && st.sort.dir === "asc" ? "desc" : "asc";
    st.sort = { col: col, dir: dir };
    const body = $("#summary tbody");
    const rows = Array.from(body.rows).map((tr, i) => {
      const cell = tr.children[idx];
      const raw = cell.dataset.sort;
      const num = raw !== undefined && raw !== "" && isFinite(Number(raw)) ? Number(raw) : null;
      return { tr: tr, i: Number(tr.dataset.v), has: raw !== undefined, num: num, text: raw === undefined ? "" : raw };
    });
    const sign = dir === "asc" ? 1 : -1;
    rows.sort((a, b) => {
      if (a.has !== b.has) return a.has ? -1 : 1;
      let c = 0;
      if (a.num !== null && b.num !== null) c = a.num - b.num;
      else c = a.text.localeCompare(b.text, undefined, { numeric: true });
      return c !== 0 ? sign * c : a.i - b.i;
    });
    rows.forEach((r) => body.appendChild(r.tr));
    head.forEach((th, j) => th.setAttribute("aria-sort", j === idx ? (dir === "asc" ? "ascending" : "descending") : "none"));
    writeHash();
  }

  // ------------------------------------------------------------------ group tables
  // The spread of one group's values (stats.spread): n, mean, sample std, min, max.
  function spread(values) {
    const xs = values.filter((x) => x !== null && x !== undefined && isFinite(x));
    const n = xs.length;
    if (!n) return { n: 0 };
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const std = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / (n - 1)) : null;
    return { n: n, mean: mean, std: std, lo: Math.min.apply(null, xs), hi: Math.max.apply(null, xs) };
  }

  function fmt(v, agg) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    if (agg === "int") return String(Math.round(v));
    if (agg === "pct") return (100 * v).toFixed(2) + "%";
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : String(+v.toPrecision(4));
  }

  function fmtSpread(s, agg) {
    if (!s.n) return "–";
    return s.n === 1 ? fmt(s.mean, agg) : fmt(s.mean, agg) + " ± " + fmt(s.std, agg === "int" ? "g" : agg);
  }

  function el(tag, text, attrs) {
    const n = document.createElement(tag);
    if (text !== undefined && text !== null) n.textContent = text;
    Object.keys(attrs || {}).forEach((k) => n.setAttribute(k, attrs[k]));
    return n;
  }

  function swatchFor(g) {
    const sw = el("span", null, { class: "swatch" });
    sw.style.background = g.color;
    return sw;
  }

  // A table row for group `g`, headed by its swatch and label.
  function groupRow(g) {
    const tr = el("tr", null, { "data-g": String(g.id) });
    const th = el("th", null, { scope: "row" });
    th.append(swatchFor(g), document.createTextNode(g.label));
    tr.appendChild(th);
    return tr;
  }

  function renderGroupTables() {
    const gs = groups();
    const T = page.table || { cfg: [], cols: [], values: {} };
    // one row per group
    const table = $("#summary-groups");
    if (table) {
      const head = el("tr");
      // Every header sorts the group rows (by the group mean where there is one; see sortGroups).
      const sortable = (text, attrs) => {
        const i = head.children.length;
        const th = el("th", null, Object.assign({ scope: "col", "aria-sort": "none" }, attrs || {}));
        const b = el("button", text, { type: "button", class: "sort-btn", title: (attrs && attrs.title) || "Sort the groups" });
        b.addEventListener("click", () => sortGroups(i));
        th.appendChild(b);
        head.appendChild(th);
      };
      sortable("Group");
      sortable("N", { title: "runs in the group (hidden runs left out)" });
      T.cfg.forEach((k) => sortable(k, { class: "cfg" }));
      T.cols.forEach((c) => sortable(c.label, { title: c.title + (c.agg ? "; mean ± std over the group's runs (hover a cell for its range)" : "; not aggregated") }));
      const body = document.createDocumentFragment();
      gs.forEach((g) => {
        const tr = groupRow(g);
        tr.appendChild(el("td", String(g.members.length)));
        T.cfg.forEach((k) => {
          const j = KEYS.indexOf(k);
          const vals = Array.from(new Set(g.members.map((v) => V[v].cfg[j])));
          tr.appendChild(el("td", vals.length === 1 ? vals[0] : vals.length + " values", { class: "cfg", title: vals.slice(0, 20).join(", ") }));
        });
        T.cols.forEach((c) => {
          if (!c.agg) { tr.appendChild(el("td", "–", { class: "missing", title: "not aggregated over a group" })); return; }
          const s = spread(g.members.map((v) => T.values[c.key][v]));
          const tip = !s.n ? "no run of the group has this value" : s.n === 1 ? "one run: no spread" :
            "range [" + fmt(s.lo, c.agg) + ", " + fmt(s.hi, c.agg) + "], N = " + s.n;
          const td = el("td", fmtSpread(s, c.agg), { class: s.n === 1 ? "one" : s.n ? "" : "missing", title: tip,
            "data-n": String(s.n), "data-mean": s.n ? String(s.mean) : "", "data-std": s.std === null || s.std === undefined ? "" : String(s.std) });
          if (s.n > 1) td.appendChild(el("span", "[" + fmt(s.lo, c.agg) + ", " + fmt(s.hi, c.agg) + "]", { class: "range" }));
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      $("thead", table).replaceChildren(head);
      $("tbody", table).replaceChildren(body);
      if (st.gsort) sortGroups(st.gsort.col, st.gsort.dir);
      const one = gs.filter((g) => g.members.length === 1).length;
      const cap = el("caption", "Per group: mean ± sample std, the range [min, max] below, N runs. " +
        (one ? one + " group" + (one === 1 ? "" : "s") + " of one run: a value, no spread. " : "") +
        "Outliers are highlighted in the per-run rows (robust z over all runs; needs " + (page.minFlag || 4) +
        " runs with the value).", { class: "table-caption" });
      const old = $("caption", table);
      if (old) old.remove();
      table.prepend(cap);
    }
    renderVariance(gs);
    renderBest(gs);
    const note = $("#groups-note");
    if (note) {
      const one = gs.filter((g) => g.members.length === 1).length;
      note.textContent = gs.length + " group" + (gs.length === 1 ? "" : "s") + (one ? " (" + one + " of one run: no band)" : "");
    }
    const sum = $("#groupby-summary");
    if (sum) sum.textContent = st.groupBy.length ? st.groupBy.join(", ") : "nothing (one group)";
    if (st.focus !== null) markFocus(false);
  }

  // Sort the group rows by header `col` (an index): a value column by its group mean, the others
  // by their text (numbers numerically); groups without a value always last. Kept across regrouping.
  function sortGroups(col, dir) {
    const table = $("#summary-groups");
    if (!table) return;
    const head = $$("thead th", table);
    if (col >= head.length) { st.gsort = null; return; }
    if (!dir) dir = st.gsort && st.gsort.col === col && st.gsort.dir === "asc" ? "desc" : "asc";
    st.gsort = { col: col, dir: dir };
    const body = $("tbody", table);
    const rows = Array.from(body.rows).map((tr, i) => {
      const cell = tr.children[col];
      const raw = cell.dataset.mean !== undefined ? cell.dataset.mean : cell.textContent.trim();
      const has = raw !== "" && !cell.classList.contains("missing");
      const num = has && isFinite(Number(raw)) ? Number(raw) : null;
      return { tr: tr, i: i, has: has, num: num, text: raw };
    });
    const sign = dir === "asc" ? 1 : -1;
    rows.sort((a, b) => {
      if (a.has !== b.has) return a.has ? -1 : 1;
      const c = a.num !== null && b.num !== null ? a.num - b.num : a.text.localeCompare(b.text, undefined, { numeric: true });
      return c !== 0 ? sign * c : a.i - b.i;
    });
    rows.forEach((r) => body.appendChild(r.tr));
    head.forEach((th, j) => th.setAttribute("aria-sort", j === col ? (dir === "asc" ? "ascending" : "descending") : "none"));
  }

  // Seed variance: per group, the spread of the chosen metric's best value, best epoch and final value.
  function renderVariance(gs) {
    const table = $("#variance");
    const m = (page.metrics || [])[st.varMetric];
    if (!table || !m) return;
    const head = el("tr");
    ["Group", "N", "best: mean", "std", "min", "max", "best epoch: mean ± std", "final: mean", "std", "min", "max"]
      .forEach((h) => head.appendChild(el("th", h, { scope: "col" })));
    const body = document.createDocumentFragment();
    gs.forEach((g) => {
      const tr = groupRow(g);
      const best = spread(g.members.map((v) => m.best[v]));
      const final = spread(g.members.map((v) => m.final[v]));
      const ep = spread(g.members.map((v) => m.bestEpoch[v]));
      tr.appendChild(el("td", String(Math.max(best.n, final.n))));
      const cells = (s, noBest) => {
        if (!s.n) return ["–", "–", "–", "–"].map((t) => el("td", t, { class: "missing", title: noBest || "no value" }));
        return [el("td", fmt(s.mean), { "data-v": String(s.mean) }),
          el("td", s.std === null ? "one run: no spread" : fmt(s.std), { "data-v": s.std === null ? "" : String(s.std), class: s.std === null ? "one" : "" }),
          el("td", fmt(s.lo), { "data-v": String(s.lo) }), el("td", fmt(s.hi), { "data-v": String(s.hi) })];
      };
      const why = m.direction ? "no run of the group has a value" : "'" + m.name + "' has no direction (lower or higher is better): no best";
      cells(best, why).forEach((c) => tr.appendChild(c));
      tr.appendChild(el("td", ep.n ? fmtSpread(ep, "int") : "–", { class: ep.n ? "" : "missing" }));
      cells(final).forEach((c) => tr.appendChild(c));
      body.appendChild(tr);
    });
    $("thead", table).replaceChildren(head);
    $("tbody", table).replaceChildren(body);
  }

  // The best configuration per metric: the group whose mean best value is best.
  function renderBest(gs) {
    const box = $("#best-config");
    if (!box) return;
    const items = [];
    (page.metrics || []).forEach((m) => {
      if (!m.direction) return;
      let best = null;
      gs.forEach((g) => {
        const s = spread(g.members.map((v) => m.best[v]));
        if (!s.n) return;
        if (!best || (m.direction === "min" ? s.mean < best.s.mean : s.mean > best.s.mean)) best = { g: g, s: s };
      });
      if (best) items.push([m, best]);
    });
    if (!items.length || gs.length < 2) { box.hidden = true; return; }
    const ul = el("ul");
    items.forEach(([m, b]) => {
      const li = el("li", null, { "data-metric": m.name, "data-g": String(b.g.id) });
      li.appendChild(el("strong", m.name));
      li.appendChild(document.createTextNode(" (" + (m.direction === "min" ? "lowest" : "highest") + " mean best): "));
      li.appendChild(swatchFor(b.g));
      li.appendChild(document.createTextNode(b.g.label + ": " + fmtSpread(b.s) + " (N = " + b.s.n + ")" +
        (b.s.n === 1 ? ", one run: no spread" : "")));
      ul.appendChild(li);
    });
    box.replaceChildren(el("strong", "Best configuration per metric"), ul);
    box.hidden = false;
  }

  // ------------------------------------------------------------------ run list (toolbar)
  const RUN_LIST_MAX = 300;  // rows listed at once; the filter finds the others
  function runMatches(v, q) {
    if (!q) return true;
    const text = (V[v].label + " " + V[v].cfg.map((c, j) => KEYS[j] + "=" + c).join(" ")).toLowerCase();
    return q.split(/\s+/).every((w) => text.indexOf(w) >= 0);
  }

  function matching() {
    const q = ($("#run-filter") || {}).value || "";
    return V.map((_, v) => v).filter((v) => runMatches(v, q.trim().toLowerCase()));
  }

  function syncRunList() {
    const sum = $("#runs-summary");
    if (sum) sum.textContent = V.length + (st.hidden.size ? " (" + st.hidden.size + " hidden)" : "");
    $$("#summary tbody tr").forEach((tr) => tr.classList.toggle("is-hidden", st.hidden.has(Number(tr.dataset.v))));
    const list = $("#run-list"), panel = $("#runs-panel");
    if (!list || !panel || !panel.open) return;
    const of = groupOf();
    const ids = matching();
    const frag = document.createDocumentFragment();
    ids.slice(0, RUN_LIST_MAX).forEach((v) => {
      const row = el("label", null, { class: "run-item", role: "listitem" });
      const box = el("input", null, { type: "checkbox", "data-v": String(v) });
      box.checked = !st.hidden.has(v);
      box.addEventListener("change", () => toggleVariant(v, box.checked));
      const sw = el("span", null, { class: "swatch" });
      sw.style.background = V[v].color;
      row.append(box, sw, el("span", V[v].label), el("span", of[v] ? "· " + of[v].label : "· hidden", { class: "grp" }));
      frag.appendChild(row);
    });
    if (ids.length > RUN_LIST_MAX) frag.appendChild(el("div", (ids.length - RUN_LIST_MAX) + " more: type to narrow the list", { class: "run-more" }));
    if (!ids.length) frag.appendChild(el("div", "No run matches", { class: "run-more" }));
    list.replaceChildren(frag);
  }

  function sync() {
    $$(".seg-btn[data-align]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.align === st.align)));
    $$(".band-btn").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.band === st.band)));
    $$(".rows-btn").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.rows === st.rows)));
    const mb = $("#members-btn");
    if (mb) mb.setAttribute("aria-pressed", String(st.members));
    $$(".gb-key input").forEach((c) => { c.checked = st.groupBy.indexOf(c.dataset.key) >= 0; });
    const rt = $("#runs-table"), gt = $("#groups-table");
    if (rt && gt) { rt.hidden = st.rows === "groups"; gt.hidden = st.rows !== "groups"; }
    $$(".scale-btn").forEach((b) => b.setAttribute("aria-pressed", String(st.logy.has(b.dataset.chart))));
    $$(".opt-select[data-chart]").forEach((s) => { s.value = String(st.sel[s.dataset.chart] || 0); });
    const vm = $("#variance-metric");
    if (vm) vm.value = String(st.varMetric);
    Object.values(charts).forEach((ch) => { if (ch.alignable && st.align === "epoch" && ch.kind !== "overlay") setAlignNote(ch, ""); });
  }

  // ------------------------------------------------------------------ controls
  function toast(text) { ES.ui.toast(text); }
  function copy(text, done) { ES.ui.copy(text, done, "Copying is blocked here; the link is in the address bar", false); }

  function wire() {
    $$(".seg-btn[data-align]").forEach((b) => b.addEventListener("click", () => setAlign(b.dataset.align)));
    $$(".band-btn").forEach((b) => b.addEventListener("click", () => setBand(b.dataset.band)));
    $$(".rows-btn").forEach((b) => b.addEventListener("click", () => setRows(b.dataset.rows)));
    const mb = $("#members-btn");
    if (mb) mb.addEventListener("click", () => toggleMembers());
    $$(".gb-key input").forEach((c) => c.addEventListener("change", () =>
      setGroupBy($$(".gb-key input").filter((x) => x.checked).map((x) => x.dataset.key))));
    $$(".scale-btn").forEach((b) => b.addEventListener("click", () => toggleLog(b.dataset.chart)));
    $$(".opt-select[data-chart]").forEach((s) => s.addEventListener("change", () => select(s.dataset.chart, s.value)));
    const vm = $("#variance-metric");
    if (vm) vm.addEventListener("change", () => { st.varMetric = Number(vm.value) || 0; renderVariance(groups()); });
    $$(".sort-btn").forEach((b) => b.addEventListener("click", () => sortBy(b.dataset.col)));
    const panel = $("#runs-panel");
    if (panel) panel.addEventListener("toggle", syncRunList);
    const filter = $("#run-filter");
    if (filter) filter.addEventListener("input", syncRunList);
    $$("[data-runs]").forEach((b) => b.addEventListener("click", () => {
      const ids = matching(), set = new Set(ids);
      if (b.dataset.runs === "show") setHidden(ids, false);
      else if (b.dataset.runs === "hide") setHidden(ids, true);
      else { setHidden(V.map((_, v) => v).filter((v) => !set.has(v)), true); setHidden(ids, false); }
    }));
    ES.ui.wireHelpAndLinks();
    $("#copy-link").addEventListener("click", () => { writeHash(); copy(location.href, "Link copied"); });
    window.addEventListener("hashchange", () => apply(readHash()));
  }

  function apply(s) {
    const jobs = [];
    if (s.logy) { st.logy = s.logy; jobs.push(refresh((ch) => !!ch.logToggle)); }
    if (s.sel) { st.sel = s.sel; jobs.push(refresh((ch) => (ch.spec || ch.raw).options !== undefined)); }
    if (s.band && s.band !== st.band) { st.band = s.band; jobs.push(refresh((ch) => ch.kind === "overlay")); }
    if (s.members !== undefined && s.members !== st.members) { st.members = s.members; jobs.push(refresh((ch) => ch.kind === "overlay")); }
    if (s.rows) st.rows = s.rows;
    const gChanged = s.groupBy && s.groupBy.join(",") !== st.groupBy.join(",");
    if (gChanged) st.groupBy = s.groupBy;
    const hChanged = s.hidden && Array.from(s.hidden).sort().join(",") !== Array.from(st.hidden).sort().join(",");
    if (hChanged) st.hidden = s.hidden;
    if (gChanged || hChanged) jobs.push(regroupAll());
    if (s.align && s.align !== st.align) { st.align = s.align; jobs.push(refresh((ch) => ch.alignable)); }
    if (s.sort) sortBy(s.sort.col, s.sort.dir);
    if (s.focus !== undefined && s.focus !== st.focus) {
      st.focus = s.focus;
      jobs.push(refresh(() => true));
      markFocus(true);
    }
    sync();
    return Promise.all(jobs);
  }

  // ------------------------------------------------------------------ lazy drawing
  function observe() {
    ES.ui.observeCharts(charts, draw, preview);
  }

  async function start() {
    const s = readHash();
    ["align", "logy", "sel", "hidden", "groupBy", "band", "members", "rows", "focus"].forEach((k) => {
      if (s[k] !== undefined) st[k] = s[k];
    });
    wire();
    renderGroupTables();
    syncRunList();
    sync();
    if (s.sort) sortBy(s.sort.col, s.sort.dir);
    if (st.focus !== null) markFocus(true);
    observe();
    if (!Object.values(charts).some((ch) => ch.status === "ok")) {  // nothing to draw: the page is complete
      ES.preview.markPainted(stats, "firstPaint");
      ES.preview.markPainted(stats, "firstInteractive");
    }
  }

  ES.app = { state: st, charts: charts, stats: stats, setAlign: setAlign, toggleLog: toggleLog, select: select,
    toggleVariant: toggleVariant, setHidden: setHidden, sortBy: sortBy, setGroupBy: setGroupBy, setBand: setBand,
    toggleMembers: toggleMembers, setRows: setRows, groups: groups, band: band, alignTo: alignTo,
    commonGrid: commonGrid, spread: spread, openRun: openRun, opened: null, ready: null };
  ES.app.ready = start().catch((err) => console.error("epochscope: start failed:", err));
})(window.ES);
