/* epochscope comparison page: state, controls, chart renderers, lazy drawing, URL hash.
 *
 * Arrays are decoded by report_decode.js (ES.ArrayStore). State: the x axis of the time
 * series ("epoch" or "turn": epochs relative to each run's turn), per-chart log scales and
 * selected options, the table's sort and the hidden variants; it lives in the URL hash, so a
 * copied link reopens the same view. Charts draw when they scroll into view; a state change
 * redraws the visible ones and marks the others dirty. Every user string passes through esc()
 * before Plotly sees it (Plotly renders a subset of HTML in names, hover text and titles).
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

  const st = { align: "epoch", logy: new Set(), sel: {}, sort: null, hidden: new Set() };
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
    return V[v].emph ? 2.6 : 1.5;
  }

  // Overlays: one line per variant (and role), x shifted by the turn when aligned.
  function overlay(ch) {
    const sp = ch.spec;
    const opt = sp.options[optionIndex(ch)];
    const aligned = st.align === "turn";
    const data = [], notAligned = new Set();
    opt.traces.forEach((t) => {
      if (st.hidden.has(t.v)) return;
      const turn = V[t.v].turn;
      if (aligned && (turn === null || turn === undefined)) { notAligned.add(t.v); return; }
      const xs = aligned ? Float64Array.from(t.x.data, (e) => e - turn) : t.x.data;
      const label = V[t.v].label + (t.role ? " · " + t.role : "");
      data.push({ type: "scatter", mode: "lines", x: xs, y: t.y.data, name: esc(label),
        line: { color: V[t.v].color, width: width(t.v), dash: t.dash || "solid" }, legendgroup: "v" + t.v,
        connectgaps: false,
        hovertemplate: "%{y:.4g} at " + (aligned ? "turn %{x:+d}" : "epoch %{x}") + "<extra>" + esc(label) + "</extra>" });
    });
    const layout = baseLayout();
    layout.xaxis.title = { text: aligned ? "epochs relative to each run's turn" : "epoch" };
    layout.yaxis.title = { text: esc(sp.options.length > 1 ? opt.label : sp.yTitle || opt.label) };
    layout.yaxis.type = st.logy.has(ch.name) ? "log" : "linear";
    if (sp.yRange && layout.yaxis.type === "linear") layout.yaxis.range = sp.yRange;
    if (layout.yaxis.type === "log") decades(layout.yaxis, data);
    if (aligned) {
      layout.shapes.push({ type: "line", xref: "x", yref: "paper", x0: 0, x1: 0, y0: 0, y1: 1,
        line: { color: "#d62728", width: 1, dash: "dash" } });
    } else {
      V.forEach((v, i) => {
        if (v.turn === null || v.turn === undefined || st.hidden.has(i)) return;
        if (!opt.traces.some((t) => t.v === i)) return;
        layout.shapes.push({ type: "line", xref: "x", yref: "paper", x0: v.turn, x1: v.turn, y0: 0, y1: 1,
          line: { color: v.color, width: 1, dash: "dot" }, opacity: 0.6 });
      });
    }
    const missing = opt.missing ? "No data for this series: " + opt.missing + ". " : "";
    const cannot = notAligned.size ? "Not alignable (no turn), not drawn in this view: " +
      Array.from(notAligned).map((v) => V[v].label + " (" + V[v].turnReason + ")").join("; ") + "." : "";
    setAlignNote(ch, missing + cannot);
    ch.card.dataset.traces = String(data.length);
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
  const KINDS = Object.assign({ overlay: overlay, difference: difference, paths: paths, multiples: multiples },
    ES.compareKinds || {});

  // ------------------------------------------------------------------ drawing
  function draw(ch) {
    ch.busy = ch.busy.then(async () => {
      if (!ch.spec) ch.spec = await store.resolve(ch.raw);
      ch.dirty = false;
      await ES.preview.loadPlotly();
      const fig = KINDS[ch.kind](ch);
      ES.preview.clear(ch);
      if (fig.html) ch.el.replaceChildren(fig.html);
      else await Plotly.react(ch.el, fig.data, fig.layout, CONFIG);
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

  // Before plotly.js runs: a static drawing of the chart's figure (see chart_preview.js).
  const preview = (ch) => ES.preview.show(ch, store, (c) => KINDS[c.kind](c), stats);

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

  // ------------------------------------------------------------------ state changes
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

  function sync() {
    $$(".seg-btn").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.align === st.align)));
    $$(".scale-btn").forEach((b) => b.setAttribute("aria-pressed", String(st.logy.has(b.dataset.chart))));
    $$(".opt-select").forEach((s) => { s.value = String(st.sel[s.dataset.chart] || 0); });
    $$(".chip").forEach((c) => c.setAttribute("aria-pressed", String(!st.hidden.has(Number(c.dataset.v)))));
    Object.values(charts).forEach((ch) => { if (ch.alignable && st.align === "epoch") setAlignNote(ch, ""); });
  }

  // ------------------------------------------------------------------ controls
  function toast(text) { ES.ui.toast(text); }
  function copy(text, done) { ES.ui.copy(text, done, "Copying is blocked here; the link is in the address bar", false); }

  function wire() {
    $$(".seg-btn").forEach((b) => b.addEventListener("click", () => setAlign(b.dataset.align)));
    $$(".scale-btn").forEach((b) => b.addEventListener("click", () => toggleLog(b.dataset.chart)));
    $$(".opt-select").forEach((s) => s.addEventListener("change", () => select(s.dataset.chart, s.value)));
    $$(".chip").forEach((c) => c.addEventListener("click", () => toggleVariant(Number(c.dataset.v))));
    $$(".sort-btn").forEach((b) => b.addEventListener("click", () => sortBy(b.dataset.col)));
    ES.ui.wireHelpAndLinks();
    $("#copy-link").addEventListener("click", () => { writeHash(); copy(location.href, "Link copied"); });
    window.addEventListener("hashchange", () => apply(readHash()));
  }

  function apply(s) {
    const jobs = [];
    if (s.logy) { st.logy = s.logy; jobs.push(refresh((ch) => !!ch.logToggle)); }
    if (s.sel) { st.sel = s.sel; jobs.push(refresh((ch) => (ch.spec || ch.raw).options !== undefined)); }
    if (s.hidden) { st.hidden = s.hidden; jobs.push(refresh(() => true)); }
    if (s.align && s.align !== st.align) { st.align = s.align; jobs.push(refresh((ch) => ch.alignable)); }
    if (s.sort) sortBy(s.sort.col, s.sort.dir);
    sync();
    return Promise.all(jobs);
  }

  // ------------------------------------------------------------------ lazy drawing
  function observe() {
    ES.ui.observeCharts(charts, draw, preview);
  }

  async function start() {
    const s = readHash();
    if (s.align) st.align = s.align;
    if (s.logy) st.logy = s.logy;
    if (s.sel) st.sel = s.sel;
    if (s.hidden) st.hidden = s.hidden;
    wire();
    sync();
    if (s.sort) sortBy(s.sort.col, s.sort.dir);
    observe();
    if (!Object.values(charts).some((ch) => ch.status === "ok")) {  // nothing to draw: the page is complete
      ES.preview.markPainted(stats, "firstPaint");
      ES.preview.markPainted(stats, "firstInteractive");
    }
  }

  ES.app = { state: st, charts: charts, stats: stats, setAlign: setAlign, toggleLog: toggleLog, select: select,
    toggleVariant: toggleVariant, sortBy: sortBy, ready: null };
  ES.app.ready = start().catch((err) => console.error("epochscope: start failed:", err));
})(window.ES);
