/* epochscope report, part 2 of 3: chart renderers.
 *
 * One renderer per chart kind. `figure(chart, state)` returns a Plotly {data, layout} built
 * from the chart's resolved spec (arrays already decoded) and the global state (epoch,
 * neuron, head, scales); the "maps" kind draws small multiples on canvases instead.
 * Every user-supplied string passes through esc() before Plotly sees it: Plotly renders a
 * subset of HTML in titles and hover text.
 */
(function (ES) {
  // The one palette (generator/palette.py), shipped in the page's JSON.
  const palette = () => (ES.page && ES.page.palette) || ["#1f77b4", "#e8731a", "#2ca02c", "#d62728"];
  const MAX_POINTS = 2500; // per trace on screen; longer series are min/max decimated

  // Known kinds keep their colours; any other kind gets a palette colour from its name.
  function eventColor(kind) {
    // Known kinds' colours come in the page's JSON (generator/palette.py EVENT_COLORS).
    const known = (ES.page && ES.page.eventColors) || {};
    if (Object.prototype.hasOwnProperty.call(known, kind)) return known[kind];
    let h = 0;
    for (let i = 0; i < kind.length; i++) h = (h * 31 + kind.charCodeAt(i)) >>> 0;
    const P = palette();
    return P[h % P.length];
  }

  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function color(i) {
    const P = palette();
    return typeof i === "number" ? P[i % P.length] : i || P[0];
  }

  // Keep the first/last point and the min and max of each bucket: spikes survive.
  function decimate(x, y) {
    const n = y.length;
    if (n <= 2 * MAX_POINTS) return { x: x, y: y };
    const buckets = MAX_POINTS / 2;
    const size = n / buckets;
    const ox = [], oy = [];
    for (let b = 0; b < buckets; b++) {
      const start = Math.floor(b * size), end = Math.min(n, Math.floor((b + 1) * size));
      let lo = -1, hi = -1;
      for (let i = start; i < end; i++) {
        const v = y[i];
        if (v !== v) continue; // NaN
        if (lo < 0 || v < y[lo]) lo = i;
        if (hi < 0 || v > y[hi]) hi = i;
      }
      if (lo < 0) { ox.push(x[start]); oy.push(NaN); continue; }
      const first = Math.min(lo, hi), second = Math.max(lo, hi);
      ox.push(x[first]); oy.push(y[first]);
      if (second !== first) { ox.push(x[second]); oy.push(y[second]); }
    }
    return { x: ox, y: oy };
  }

  function baseLayout(ch, st, extra) {
    const layout = {
      height: ch.height || 300,
      margin: { l: 64, r: 24, t: 8, b: 44 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#ffffff",
      font: { family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 12, color: "#1d2330" },
      hovermode: "closest",
      hoverlabel: { namelength: -1 },
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 11 } },
      xaxis: { title: { text: "epoch" }, zeroline: false, automargin: true, gridcolor: "#e6e8ef" },
      yaxis: { zeroline: false, automargin: true, gridcolor: "#e6e8ef" },
      shapes: [],
      annotations: [],
    };
    return Object.assign(layout, extra || {});
  }

  // Epoch marker, event lines (with hover markers) and checkpoint ticks on an epoch x axis.
  function timeDecor(ch, st, fig) {
    const layout = fig.layout;
    // The epoch marker is not part of the figure: it is an overlay moved without replotting
    // (see placeMarker), so an epoch change costs no Plotly call on these charts.
    layout.yaxis9 = { overlaying: "y", range: [0, 1], visible: false, fixedrange: true };
    if (!st.events) return fig;
    const shown = ES.page.events.filter((e) => !st.hiddenKinds.has(e.kind));
    if (shown.length) {
      // One line trace per kind (segments separated by gaps) and one hover-marker trace: cheap
      // to draw however many events there are.
      const kinds = {};
      shown.forEach((e) => { (kinds[e.kind] = kinds[e.kind] || []).push(e.epoch); });
      Object.keys(kinds).forEach((k) => {
        const xs = [], ys = [];
        kinds[k].forEach((x) => { xs.push(x, x, null); ys.push(0, 1, null); });
        fig.data.push({ type: "scatter", mode: "lines", x: xs, y: ys, yaxis: "y9", hoverinfo: "skip",
          showlegend: false, line: { color: eventColor(k), width: 1, dash: "dash" }, opacity: 0.75 });
      });
      fig.data.push({ type: "scatter", mode: "markers", x: shown.map((e) => e.epoch), y: shown.map(() => 0.97),
        yaxis: "y9", name: "events", hovertemplate: "%{text}<extra></extra>", showlegend: false, cliponaxis: false,
        text: shown.map((e) => "<b>" + esc(e.kind) + "</b> at epoch " + e.epoch +
          (e.message ? "<br>" + esc(e.message) : "") + (e.detail ? "<br>" + esc(e.detail) : "")),
        marker: { symbol: "triangle-down", size: 9, color: shown.map((e) => eventColor(e.kind)) } });
    }
    const ck = ES.page.checkpointEpochs;
    if (ck && ck.length) {
      fig.data.push({ type: "scatter", mode: "markers", x: ck, y: new Float32Array(ck.length).fill(0.012),
        yaxis: "y9", name: "checkpoints", showlegend: false, hovertemplate: "checkpoint at epoch %{x}<extra></extra>",
        marker: { symbol: "line-ns-open", size: 7, color: "#8a90a0", line: { width: 1, color: "#8a90a0" } } });
    }
    return fig;
  }

  function axisTypes(ch, st, layout) {
    if (ch.logToggle) {
      layout.yaxis.type = st.logy.has(ch.name) ? "log" : "linear";
      if (ch.epochAxis) layout.xaxis.type = st.logx.has(ch.name) ? "log" : "linear";
    }
    [layout.yaxis, layout.yaxis2].forEach((ax) => { if (ax) ax.exponentformat = "power"; });
  }

  // Exponential moving average as TensorBoard draws it (debiased, NaN/inf left as gaps).
  function ema(y, w) {
    const out = new Float32Array(y.length);
    let last = 0, n = 0;
    for (let i = 0; i < y.length; i++) {
      const v = y[i];
      if (!isFinite(v)) { out[i] = NaN; continue; }
      last = last * w + (1 - w) * v; n++;
      out[i] = last / (1 - Math.pow(w, n));
    }
    return out;
  }

  // ---------------------------------------------------------------- lines over epochs
  function lines(ch, st) {
    const sp = ch.spec;
    ch.cache = ch.cache || {};
    const smoothing = ch.smooth && st.smooth > 0 ? st.smooth : 0;
    const raw = [];
    const data = sp.traces.map((t, i) => {
      let pts;
      if (t.col === undefined || typeof t.col === "number") {
        const key = "t" + i;
        if (!ch.cache[key]) ch.cache[key] = decimate(t.x.data, t.col === undefined ? t.y.data : ES.column(t.y, t.col));
        pts = ch.cache[key];
      } else {
        const cols = t.y.shape[1] || 1;
        const j = Math.min(cols - 1, t.col === "head" ? st.head : st.neuron);
        pts = decimate(t.x.data, ES.column(t.y, j));
      }
      if (smoothing && t.col === undefined) {
        // The raw curve stays, faint, under its moving average.
        raw.push({ type: "scatter", mode: "lines", x: pts.x, y: pts.y, hoverinfo: "skip", showlegend: false,
          line: { color: color(t.color), width: 1 }, opacity: 0.28, yaxis: t.yaxis || "y", connectgaps: false });
        const key = "e" + i + ":" + smoothing;
        if (!ch.cache[key]) ch.cache[key] = decimate(t.x.data, ema(t.y.data, smoothing));
        pts = ch.cache[key];
      }
      const selectedHead = t.head !== undefined && t.head === st.head;
      const tr = {
        type: "scatter", mode: t.mode || "lines", x: pts.x, y: pts.y,
        name: esc(t.col === "neuron" ? t.name + " " + st.neuron : t.name),
        line: { color: color(t.color), width: t.width !== undefined ? t.width : selectedHead ? 3.5 : 1.8,
          dash: t.dash || "solid", shape: t.shape || "linear" },
        marker: { size: 4, color: color(t.color) },
        opacity: t.opacity !== undefined ? t.opacity : 1,
        yaxis: t.yaxis || "y",
        connectgaps: false,
        showlegend: t.legend !== false,
        hovertemplate: "%{y:.4g} at " + esc(sp.xHover || "epoch") + " %{x}<extra>" + esc(t.name) + "</extra>",
      };
      if (t.visible) tr.visible = t.visible;
      if (t.legendName) tr.name = esc(t.legendName); // one legend entry for a group; hover names the trace
      if (t.group) tr.legendgroup = t.group;
      if (t.stack) { tr.stackgroup = t.stack; tr.fillcolor = undefined; }
      if (t.fill) { tr.fill = t.fill; tr.fillcolor = "rgba(31,119,180,0.15)"; }
      if (t.k && t.col === undefined) {
        if (!ch.cache["k" + i]) ch.cache["k" + i] = decimate(t.x.data, t.k.data);
        tr.customdata = ch.cache["k" + i].y.length === pts.y.length ? ch.cache["k" + i].y : undefined;
        if (tr.customdata) tr.hovertemplate = "%{y:.4g} at epoch %{x} (" + esc(t.kLabel || "k") + " %{customdata:.3g})<extra>" + esc(t.name) + "</extra>";
      }
      return tr;
    });
    raw.reverse().forEach((r) => data.unshift(r));
    (sp.points || []).forEach((p) => data.push({
      // A point's text is one string or a list of lines (each escaped, then joined).
      type: "scatter", mode: "markers", x: p.x, y: p.y, name: esc(p.name),
      text: p.text.map((t) => (Array.isArray(t) ? t.map(esc).join("<br>") : esc(t))),
      legendgroup: p.group, showlegend: !p.group, hovertemplate: "%{text}<extra></extra>",
      marker: { symbol: p.symbol || "x", size: p.size || 8, color: p.color !== undefined ? color(p.color) : "#d62728",
        line: { width: 1, color: "#1d2330" } },
    }));
    const layout = baseLayout(ch, st);
    if (ch.small) { layout.height = 230; layout.margin = { l: 56, r: 12, t: 6, b: 38 }; }
    layout.yaxis.title = { text: esc(sp.yTitle || "") };
    if (sp.xTitle) layout.xaxis.title = { text: esc(sp.xTitle) };
    if (sp.yRange && !st.logy.has(ch.name)) layout.yaxis.range = sp.yRange.slice();
    if (sp.xRange) layout.xaxis.range = sp.xRange.slice();
    if (sp.xDtick) layout.xaxis.dtick = sp.xDtick;
    if (sp.y2Title) layout.yaxis2 = { overlaying: "y", side: "right", title: { text: esc(sp.y2Title) },
      showgrid: false, zeroline: false, automargin: true, rangemode: sp.y2Min0 ? "tozero" : "normal" };
    if (sp.y2Range && layout.yaxis2) layout.yaxis2.range = sp.y2Range.slice();
    (sp.vlines || []).forEach((v) => {
      layout.shapes.push({ type: "line", xref: "x", yref: "paper", x0: v.x, x1: v.x, y0: 0, y1: 1,
        line: { color: "#8a90a0", width: 1, dash: "dot" } });
    });
    if (sp.note) layout.annotations.push({ xref: "paper", yref: "paper", x: 0.02, xanchor: "left", y: 0.02,
      yanchor: "bottom", text: esc(sp.note), showarrow: false, font: { size: 12, color: "#a15c00" },
      bgcolor: "rgba(255,255,255,0.85)" });
    (sp.hlines || []).forEach((h) => {
      layout.shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: h.y, y1: h.y,
        line: { color: "#d62728", width: 1, dash: "dot" } });
      layout.annotations.push({ xref: "paper", x: 1, xanchor: "right", y: h.y, yanchor: "bottom",
        text: esc(h.text), showarrow: false, font: { size: 10, color: "#d62728" }, bgcolor: "rgba(255,255,255,0.8)" });
    });
    axisTypes(ch, st, layout);
    if (sp.noTime) return { data: data, layout: layout };
    return bands(sp, timeDecor(ch, st, { data: data, layout: layout }));
  }

  // Shaded epoch windows (e.g. dense traces) with a hover marker each; clicking one selects its
  // first epoch, which the charts that drill into the window follow.
  function bands(sp, fig) {
    const list = sp.bands || [];
    if (!list.length) return fig;
    const layout = fig.layout;
    layout.yaxis9 = layout.yaxis9 || { overlaying: "y", range: [0, 1], visible: false, fixedrange: true };
    list.forEach((b) => layout.shapes.push({ type: "rect", xref: "x", yref: "paper", x0: b.x0, x1: b.x1, y0: 0, y1: 1,
      fillcolor: "rgba(23,190,207,0.12)", line: { width: 1, color: "rgba(23,190,207,0.55)" }, layer: "below" }));
    fig.data.push({ type: "scatter", mode: "markers", x: list.map((b) => b.epoch), y: list.map(() => 0.04), yaxis: "y9",
      name: "dense traces", showlegend: false, cliponaxis: false, hovertemplate: "%{text}<extra></extra>",
      text: list.map((b) => esc(b.text)), marker: { symbol: "square", size: 8, color: "#17becf" } });
    return fig;
  }

  // The window of `windows` ({epoch_start, epoch_end}) the selected epoch lies in (the latest
  // starting one), else the nearest.
  function windowAt(windows, epoch) {
    let best = -1, dist = Infinity;
    windows.forEach((w, i) => {
      const d = epoch < w.epoch_start ? w.epoch_start - epoch : epoch > w.epoch_end ? epoch - w.epoch_end : 0;
      if (d < dist || (d === 0 && dist === 0)) { best = i; dist = d; }
    });
    return best;
  }

  // ---------------------------------------------------------------- per-batch lines of one window
  // The window the selected epoch falls in: every trace sliced to its steps, drawn as `lines`.
  function windowLines(ch, st) {
    const sp = ch.spec;
    const k = windowAt(sp.windows, st.epoch);
    const w = sp.windows[k];
    ch.shownEpoch = st.epoch;
    ch.cache = ch.cache || {};
    if (!ch.cache["w" + k]) {
      const traces = [];
      sp.traces.forEach((t) => {
        const x = t.x.data, y = t.y.data, xs = [], ys = [];
        for (let i = 0; i < x.length; i++) if (x[i] >= w.step_start && x[i] <= w.step_end) { xs.push(x[i]); ys.push(y[i]); }
        if (xs.length) traces.push(Object.assign({}, t, { x: { data: xs }, y: { data: ys } }));
      });
      ch.cache["w" + k] = traces;
    }
    const sub = { name: ch.name, spec: Object.assign({}, sp, { traces: ch.cache["w" + k], noTime: true,
      note: ch.cache["w" + k].length ? "" : "nothing of this kind was recorded in this trace" }), logToggle: ch.logToggle };
    const fig = lines(sub, st);
    fig.layout.xaxis.title = { text: "batch step (trace " + w.trace + ": " + esc(w.label) + ")" };
    fig.data.forEach((d) => { if (d.hovertemplate) d.hovertemplate = d.hovertemplate.replace("at epoch", "at step"); });
    return fig;
  }

  // ---------------------------------------------------------------- 2-D map at one epoch
  function map2d(ch, st) {
    const sp = ch.spec;
    // Rows per epoch, or per window of epochs (`windows`: the one the selected epoch is in).
    const i = sp.windows ? windowAt(sp.windows, st.epoch) : ES.nearest(sp.epochs.data, st.epoch);
    ch.shownEpoch = sp.windows ? st.epoch : sp.epochs.data[i];
    const H = sp.z.shape[1], W = sp.z.shape[2];
    const flat = ES.row(sp.z, i);
    const z = [];
    for (let r = 0; r < H; r++) z.push(flat.subarray(r * W, (r + 1) * W));
    const hm = { type: "heatmap", z: z, colorscale: sp.colorscale || "Viridis",
      colorbar: { title: { text: esc(sp.zTitle || ""), side: "right" }, thickness: 12 },
      hovertemplate: "row %{y}, column %{x}: %{z:.3g}<extra></extra>" };
    if (sp.zmid !== undefined) hm.zmid = sp.zmid;
    const labels = (l) => l.map((v) => (typeof v === "number" ? v : esc(v)));
    if (sp.xLabels) hm.x = labels(sp.xLabels);
    if (sp.yLabels) hm.y = labels(sp.yLabels);
    if (sp.cellText) { hm.texttemplate = "%{z:.3g}"; hm.textfont = { size: 12 }; }
    if (sp.xLabels || sp.yLabels) hm.hovertemplate = esc(sp.yTitle || "row") + " %{y}, " + esc(sp.xTitle || "column") + " %{x}: %{z:.3g}<extra></extra>";
    const layout = baseLayout(ch, st, { showlegend: false, height: sp.height || 340 });
    layout.xaxis.title = { text: esc(sp.xTitle || "column") };
    layout.yaxis.title = { text: esc(sp.yTitle || "row") };
    if (sp.xLabels && typeof sp.xLabels[0] === "string") layout.xaxis.type = "category";
    if (sp.yLabels && typeof sp.yLabels[0] === "string") layout.yaxis.type = "category";
    if (H <= 12 && !sp.yLabels) layout.yaxis.dtick = 1;
    layout.yaxis.autorange = "reversed";
    if (sp.windows) {
      const w = sp.windows[i];
      layout.annotations.push({ xref: "paper", yref: "paper", x: 0, xanchor: "left", y: 1, yanchor: "bottom",
        text: "trace " + w.trace + ": " + esc(w.label), showarrow: false, font: { size: 11 } });
      layout.margin.t = 24;
    }
    return { data: [hm], layout: layout };
  }

  // ---------------------------------------------------------------- tables (no Plotly)
  // Sortable, filterable, paginated; every cell is set as text (user strings stay data).
  const PAGE_ROWS = 25;
  function fmtNum(v) {
    if (v === null || v === undefined || v !== v) return "";
    if (!isFinite(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(3) : String(+v.toPrecision(4));
  }

  function tableModel(ch) {
    if (ch.model) return ch.model;
    if (ch.kind === "events") {
      const skip = new Set((ch.spec && ch.spec.exclude) || []);
      const ev = ES.page.events.filter((e) => !skip.has(e.kind));
      const cols = [{ name: "epoch", type: "int", data: ev.map((e) => e.epoch) },
        { name: "kind", type: "str", data: ev.map((e) => e.kind) },
        { name: "message", type: "str", data: ev.map((e) => e.message) },
        { name: "payload", type: "str", data: ev.map((e) => e.detail) }];
      ch.model = { cols: cols, n: ev.length, epochOf: (r) => ev[r].epoch };
    } else {
      const cols = ch.spec.columns.map((c) => ({ name: c.name, type: c.type,
        data: Array.isArray(c.data) ? c.data : c.data.data }));
      const ec = ch.spec.epochColumn ? cols.find((c) => c.name === ch.spec.epochColumn) : null;
      ch.model = { cols: cols, n: ch.spec.rows, epochOf: ec ? (r) => ec.data[r] : null };
    }
    return ch.model;
  }

  function cellText(col, r) {
    const v = col.data[r];
    if (col.type === "num") return fmtNum(v);
    if (col.type === "int") return v === undefined || v === null ? "" : String(v);
    return v === undefined || v === null ? "" : String(v);
  }

  function drawTable(ch, st, el) {
    const m = tableModel(ch);
    if (!ch.tv) {
      ch.tv = { sort: -1, dir: 1, filter: "", page: 0, order: null, text: null };
      el.classList.add("tbl-host");
      const bar = document.createElement("div");
      bar.className = "tbl-bar";
      const filter = document.createElement("input");
      filter.type = "search"; filter.placeholder = "filter rows"; filter.className = "tbl-filter";
      filter.setAttribute("aria-label", "Filter the rows of " + ch.card.querySelector("h3").textContent);
      const count = document.createElement("span");
      count.className = "tbl-count";
      bar.append(filter, count);
      const wrap = document.createElement("div");
      wrap.className = "tbl-wrap";
      const table = document.createElement("table");
      table.className = "data-table";
      const thead = document.createElement("thead");
      const hr = document.createElement("tr");
      m.cols.forEach((c, k) => {
        const th = document.createElement("th");
        const b = document.createElement("button");
        b.type = "button"; b.textContent = c.name; b.title = "Sort by " + c.name;
        if (c.type !== "str") th.className = "num";
        b.addEventListener("click", () => {
          if (ch.tv.sort === k) ch.tv.dir = -ch.tv.dir; else { ch.tv.sort = k; ch.tv.dir = 1; }
          ch.tv.order = null; ch.tv.page = 0; drawTable(ch, st, el);
        });
        th.appendChild(b); hr.appendChild(th);
      });
      thead.appendChild(hr);
      const tbody = document.createElement("tbody");
      table.append(thead, tbody);
      wrap.appendChild(table);
      const pager = document.createElement("div");
      pager.className = "tbl-pager";
      const prev = document.createElement("button"), next = document.createElement("button"), where = document.createElement("span");
      prev.type = next.type = "button"; prev.textContent = "◀"; next.textContent = "▶";
      prev.setAttribute("aria-label", "Previous page"); next.setAttribute("aria-label", "Next page");
      prev.addEventListener("click", () => { ch.tv.page = Math.max(0, ch.tv.page - 1); drawTable(ch, st, el); });
      next.addEventListener("click", () => { ch.tv.page += 1; drawTable(ch, st, el); });
      pager.append(prev, where, next);
      let timer = null;
      filter.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => { ch.tv.filter = filter.value.trim().toLowerCase(); ch.tv.order = null; ch.tv.page = 0; drawTable(ch, st, el); }, 120);
      });
      if (m.epochOf) tbody.addEventListener("click", (ev) => {
        const tr = ev.target.closest("tr[data-row]");
        if (tr) ES.app.setEpoch(m.epochOf(Number(tr.dataset.row)));
      });
      el.replaceChildren(bar, wrap, pager);
      ch.tv.els = { count: count, tbody: tbody, heads: Array.from(hr.children), where: where, prev: prev, next: next };
    }
    const tv = ch.tv;
    let only = null;
    if (ch.spec && ch.spec.atEpoch) {
      // Only the rows of one epoch: the nearest of the table's epochs to the selected one.
      const eps = ch.spec.atEpoch.data;
      const shown = eps.length ? eps[ES.nearest(eps, st.epoch)] : null;
      if (shown !== ch.shownEpoch) tv.order = null;
      ch.shownEpoch = shown;
      const ec = m.cols.find((c) => c.name === ch.spec.epochColumn);
      only = (r) => ec.data[r] === shown;
    }
    if (!tv.order) {
      let idx = [];
      if (tv.filter) {
        if (!tv.text) { tv.text = new Array(m.n); for (let r = 0; r < m.n; r++) tv.text[r] = m.cols.map((c) => cellText(c, r)).join("\u0001").toLowerCase(); }
        for (let r = 0; r < m.n; r++) if (tv.text[r].indexOf(tv.filter) >= 0) idx.push(r);
      } else idx = Array.from({ length: m.n }, (_, r) => r);
      if (only) idx = idx.filter(only);
      if (tv.sort >= 0) {
        const c = m.cols[tv.sort], d = tv.dir;
        const key = c.type === "str" ? (r) => String(c.data[r] === null || c.data[r] === undefined ? "" : c.data[r]) : (r) => c.data[r];
        idx.sort((a, b) => {
          const x = key(a), y = key(b);
          const xm = x === "" || x === null || x === undefined || x !== x, ym = y === "" || y === null || y === undefined || y !== y;
          if (xm || ym) return xm === ym ? a - b : xm ? 1 : -1;  // missing values last
          return (x < y ? -1 : x > y ? 1 : a - b) * d;
        });
      }
      tv.order = idx;
    }
    const pages = Math.max(1, Math.ceil(tv.order.length / PAGE_ROWS));
    tv.page = Math.min(tv.page, pages - 1);
    const rows = tv.order.slice(tv.page * PAGE_ROWS, (tv.page + 1) * PAGE_ROWS);
    const frag = document.createDocumentFragment();
    rows.forEach((r) => {
      const tr = document.createElement("tr");
      tr.dataset.row = r;
      if (m.epochOf) { tr.className = "pick"; tr.title = "Select epoch " + m.epochOf(r); if (!only && m.epochOf(r) === st.epoch) tr.classList.add("at-epoch"); }
      m.cols.forEach((c) => {
        const td = document.createElement("td");
        td.textContent = cellText(c, r);
        if (c.type !== "str") { td.className = "num"; if (c.type === "num" && c.data[r] === c.data[r]) td.title = String(c.data[r]); }
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    });
    tv.els.tbody.replaceChildren(frag);
    tv.els.count.textContent = only ? tv.order.length + " rows at epoch " + ch.shownEpoch + " (" + m.n.toLocaleString("en-US") + " in all epochs)"
      : (tv.filter ? tv.order.length.toLocaleString("en-US") + " of " : "") + m.n.toLocaleString("en-US") + " rows";
    tv.els.where.textContent = "page " + (tv.page + 1) + " of " + pages;
    tv.els.prev.disabled = tv.page === 0; tv.els.next.disabled = tv.page >= pages - 1;
    tv.els.heads.forEach((th, k) => th.setAttribute("aria-sort", k === tv.sort ? (tv.dir > 0 ? "ascending" : "descending") : "none"));
  }

  // ---------------------------------------------------------------- heatmap over epochs
  function heatmapTime(ch, st) {
    const sp = ch.spec;
    if (!ch.cache) {
      const rows = sp.z.shape[1];
      const z = [];
      for (let j = 0; j < rows; j++) z.push(ES.column(sp.z, j));
      ch.cache = { z: z, y: sp.yLabels.map(esc) };
    }
    const data = [{ type: "heatmap", x: sp.x.data, y: ch.cache.y, z: ch.cache.z, colorscale: sp.colorscale || "Viridis",
      colorbar: { title: { text: esc(sp.zTitle || ""), side: "right" }, thickness: 12 },
      hovertemplate: "%{y} at epoch %{x}: %{z:.3g}<extra></extra>" }];
    if (sp.zmin !== undefined) { data[0].zmin = sp.zmin; data[0].zmax = sp.zmax; }
    if (sp.zTicks) { data[0].colorbar.tickvals = sp.zTicks.tickvals; data[0].colorbar.ticktext = sp.zTicks.ticktext.map(esc); }
    // Markers on the rows (e.g. each neuron's switches and commitment epoch); y: row labels.
    (sp.points || []).forEach((pt) => {
      const rows = pt.rows.data, tr = { type: "scatter", mode: "markers", x: pt.x.data, y: Array.from(rows, (r) => ch.cache.y[r]),
        name: esc(pt.name), hovertemplate: esc(pt.hover) + "<extra></extra>", showlegend: true,
        marker: { symbol: pt.symbol || "x", size: 6, color: pt.color || "#d62728", line: { width: 1.5, color: pt.color || "#d62728" } } };
      if (pt.custom) tr.customdata = Array.from(rows, (_, i) => pt.custom.map((c) => c.data[i]));
      data.push(tr);
    });
    const layout = baseLayout(ch, st, { showlegend: !!(sp.points && sp.points.length) });
    layout.yaxis.title = { text: esc(sp.yTitle || "") };
    layout.yaxis.type = "category";
    layout.yaxis.autorange = "reversed";
    const labels = ch.cache.y;
    if (labels.length > 40 && labels.some((l) => l.startsWith("cos "))) {
      // Fourier components: label the cos row of every m-th frequency (hover names each row).
      const m = Math.max(1, Math.round(labels.length / 2 / 18));
      layout.yaxis.tickvals = labels.filter((l) => l === "const" || (l.startsWith("cos ") && Number(l.slice(4)) % m === 0));
    }
    layout.height = Math.max(260, Math.min(sp.rowsPerPx ? 760 : 520, 120 + 9 * ch.cache.y.length));
    if (sp.xTitle) layout.xaxis.title = { text: esc(sp.xTitle) };
    if (labels.length > 60 && !layout.yaxis.tickvals) {
      // Many rows (every neuron): label every m-th row; zoom in (drag) to read them all.
      const m = Math.ceil(labels.length / 40);
      layout.yaxis.tickvals = labels.filter((l, r) => r % m === 0);
      layout.yaxis.tickfont = { size: 9 };
    }
    if (st.logx.has(ch.name)) layout.xaxis.type = "log";
    return timeDecor(ch, st, { data: data, layout: layout });
  }

  // ---------------------------------------------------------------- profile at one epoch
  function profile(ch, st) {
    const sp = ch.spec;
    const i = ES.nearest(sp.epochs.data, st.epoch);
    ch.shownEpoch = sp.epochs.data[i];
    const data = sp.traces.map((t) => {
      const y = ES.row(t.y, i);
      const tr = { type: sp.bar ? "bar" : "scatter", x: sp.x.map((v) => (typeof v === "string" ? esc(v) : v)), y: y, name: esc(t.name),
        marker: { color: color(t.color) }, hovertemplate: "%{y:.4g} at " + (sp.hoverX !== undefined ? esc(sp.hoverX) : sp.bar ? "k = " : "index ") + "%{x}<extra>" + esc(t.name) + "</extra>" };
      if (t.err) tr.error_y = { type: "data", array: ES.row(t.err, i), visible: true, color: "#1d2330", thickness: 1.2 };
      if (sp.bar && t.outline) {
        const o = ES.row(t.outline, ES.nearest(sp.epochs.data, st.epoch));
        tr.marker.line = { width: Array.from(o, (m) => (m ? 2 : 0)), color: "#1d2330" };
      }
      else { tr.mode = sp.mode || "lines+markers"; tr.line = { color: color(t.color), width: 1.5 }; tr.marker.size = 3; }
      return tr;
    });
    const layout = baseLayout(ch, st, { barmode: "group", bargap: 0.15 });
    layout.xaxis.title = { text: esc(sp.xTitle || "") };
    layout.yaxis.title = { text: esc(sp.yTitle || "") };
    axisTypes(ch, st, layout);
    // One range for every epoch: moving the epoch shows change instead of rescaling.
    if (sp.yAll) {
      const [pos, hi, lo] = sp.yAll;
      if (layout.yaxis.type === "log") {
        const a = Math.log10(pos), b = Math.log10(hi), pad = 0.05 * (b - a || 1);
        layout.yaxis.range = [a - pad, b + pad];
      } else {
        const a = Math.min(0, lo), pad = 0.04 * (hi - a || 1);
        layout.yaxis.range = [a, hi + pad];
      }
    }
    return { data: data, layout: layout };
  }

  // ---------------------------------------------------------------- stage timeline
  // One row per lane (e.g. a slot): horizontal segments [start, end] coloured by their state
  // (one legend entry per state), with point markers (e.g. gate results) on the rows.
  function timeline(ch, st) {
    const sp = ch.spec;
    const lanes = sp.lanes.map(esc);
    const data = [];
    sp.states.forEach((state, k) => {
      const segs = sp.segments.filter((g) => g.state === k);
      if (!segs.length) return;
      data.push({ type: "bar", orientation: "h", name: esc(state.name), y: segs.map((g) => lanes[g.lane]),
        base: segs.map((g) => g.start - 0.5), x: segs.map((g) => g.end - g.start + 1), width: 0.55,
        marker: { color: state.color, line: { width: 1, color: "#ffffff" } },
        text: segs.map((g) => esc(g.label)), hovertext: segs.map((g) => esc(g.text)), textposition: "inside",
        insidetextanchor: "middle", textfont: { size: 10, color: state.dark ? "#ffffff" : "#1d2330" },
        constraintext: "inside", textangle: 0, cliponaxis: true, customdata: segs.map((g) => g.start),
        hovertemplate: "<b>%{y}</b>: " + esc(state.name) + "<br>%{hovertext}<extra></extra>" });
    });
    (sp.points || []).forEach((p) => {
      if (!p.x.length) return;
      data.push({ type: "scatter", mode: "markers", name: esc(p.name), x: p.x, y: p.lane.map((l) => lanes[l]),
        text: p.text.map(esc), hovertemplate: "%{text}<extra></extra>", cliponaxis: false,
        marker: { symbol: p.symbol, size: 11, color: p.color, line: { width: 1, color: "#1d2330" } } });
    });
    const layout = baseLayout(ch, st, { barmode: "overlay", height: Math.max(200, 110 + 52 * lanes.length) });
    layout.yaxis = { type: "category", categoryorder: "array", categoryarray: lanes.slice().reverse(),
      automargin: true, title: { text: esc(sp.yTitle || "") }, gridcolor: "#e6e8ef" };
    if (sp.range) layout.xaxis.range = sp.range.slice();
    return bands(sp, timeDecor(ch, st, { data: data, layout: layout }));
  }

  // ---------------------------------------------------------------- PCA trajectory
  function trajectory(ch, st) {
    const sp = ch.spec;
    const ep = sp.epochs.data;
    const i = ES.nearest(ep, st.epoch);
    ch.shownEpoch = ep[i];
    const data = [
      { type: "scatter", mode: "lines", x: sp.xs.data, y: sp.ys.data, line: { color: "#b8bdc9", width: 1 },
        hoverinfo: "skip", showlegend: false },
      { type: "scatter", mode: "markers", x: sp.xs.data, y: sp.ys.data, customdata: ep, name: "checkpoints",
        marker: { size: 7, color: ep, colorscale: "Viridis", showscale: true,
          colorbar: { title: { text: "epoch", side: "right" }, thickness: 12 } },
        hovertemplate: "epoch %{customdata}<br>(%{x:.3g}, %{y:.3g})<extra></extra>", showlegend: false },
    ];
    if (sp.crossings.length) {
      data.push({ type: "scatter", mode: "markers", x: sp.crossings.map((c) => c.x), y: sp.crossings.map((c) => c.y),
        text: sp.crossings.map((c) => esc(c.text)), name: "self-intersection",
        marker: { symbol: "x-thin-open", size: 13, color: "#d62728", line: { width: 2.5, color: "#d62728" } },
        hovertemplate: "%{text}<extra></extra>", showlegend: true });
    }
    const layout = baseLayout(ch, st, { height: 340 });
    layout.xaxis.title = { text: esc(sp.xTitle) };
    layout.yaxis.title = { text: esc(sp.yTitle) };
    return { data: data, layout: layout };
  }

  // ---------------------------------------------------------------- neuron clusters
  function clusters(ch, st) {
    const sp = ch.spec;
    const i = ES.nearest(sp.epochs.data, st.epoch);
    ch.shownEpoch = sp.epochs.data[i];
    const n = sp.frac.shape[1], k = sp.frac.shape[2];
    const slice = ES.row(sp.frac, i);
    const order = [];
    const dom = new Int32Array(n), best = new Float32Array(n);
    for (let u = 0; u < n; u++) {
      let arg = -1, top = -1;
      for (let f = 0; f < k; f++) { const v = slice[u * k + f]; if (v > top) { top = v; arg = f; } }
      dom[u] = top >= sp.threshold ? arg : k; best[u] = top; order.push(u);
    }
    order.sort((a, b) => dom[a] - dom[b] || best[b] - best[a] || a - b);
    const z = order.map((u) => slice.subarray(u * k, (u + 1) * k));
    const ylabels = order.map((u) => "n" + u);
    const data = [{ type: "heatmap", x: sp.freqs, y: ylabels, z: z, colorscale: "Viridis", zmin: 0, zmax: 1,
      colorbar: { title: { text: "share of variance", side: "right" }, thickness: 12 },
      hovertemplate: "neuron %{y}, k = %{x}: %{z:.2f} of its variance<extra></extra>" }];
    if (sp.withMaps && sp.withMaps.length) {
      const rows = sp.withMaps.filter((u) => u < n);
      data.push({ type: "scatter", mode: "markers", x: rows.map(() => sp.freqs[sp.freqs.length - 1] + 1.2),
        y: rows.map((u) => "n" + u), marker: { symbol: "square", size: 7, color: "#ff9500" }, cliponaxis: false,
        hovertemplate: "neuron %{y} has a stored activation map<extra></extra>", showlegend: false });
    }
    const layout = baseLayout(ch, st, { showlegend: false, height: Math.max(360, Math.min(1000, 200 + 1.5 * n)) });
    // One label per cluster at its middle row, a line between clusters; drag to zoom into rows.
    const tickvals = [], ticktext = [];
    for (let r = 0; r < n;) {
      let end = r;
      while (end + 1 < n && dom[order[end + 1]] === dom[order[r]]) end++;
      tickvals.push(ylabels[Math.floor((r + end) / 2)]);
      ticktext.push((dom[order[r]] < k ? "k = " + sp.freqs[dom[order[r]]] : "no cluster") + " (" + (end - r + 1) + ")");
      if (end + 1 < n) layout.shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: end + 0.5, y1: end + 0.5,
        line: { color: "#ffffff", width: 1 } });
      r = end + 1;
    }
    layout.xaxis.title = { text: "frequency k" + (sp.withMaps ? " (orange squares: neurons with a stored map)" : "") };
    if (sp.withMaps) layout.xaxis.range = [sp.freqs[0] - 0.5, sp.freqs[sp.freqs.length - 1] + 1.8];
    layout.yaxis = { type: "category", autorange: "reversed", ticks: "", showgrid: false, tickvals: tickvals,
      ticktext: ticktext, tickfont: { size: 10 }, automargin: true,
      zeroline: false, title: { text: "neurons by cluster (drag to zoom)" } };
    if (n <= 64) { layout.yaxis.tickvals = undefined; layout.yaxis.ticktext = undefined; }
    layout.xaxis.showgrid = false;
    const pos = order.indexOf(st.neuron);
    if (pos >= 0) {
      layout.shapes.push({ type: "rect", xref: "paper", x0: 0, x1: 1, yref: "y", y0: pos - 0.5, y1: pos + 0.5,
        line: { color: "#ff3b30", width: 2 } });
      layout.annotations.push({ xref: "paper", x: 0, xanchor: "left", y: pos, yref: "y", yanchor: "bottom",
        text: "neuron " + st.neuron, showarrow: false, font: { color: "#ff3b30", size: 11 },
        bgcolor: "rgba(255,255,255,0.85)" });
    }
    return { data: data, layout: layout };
  }

  // ---------------------------------------------------------------- small multiples (canvas)
  let VIRIDIS = null;
  function viridis() {
    if (VIRIDIS) return VIRIDIS;
    const stops = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
      [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];
    VIRIDIS = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const t = (i / 255) * (stops.length - 1), a = Math.floor(t), b = Math.min(stops.length - 1, a + 1), f = t - a;
      for (let c = 0; c < 3; c++) VIRIDIS[i * 3 + c] = stops[a][c] + f * (stops[b][c] - stops[a][c]);
    }
    return VIRIDIS;
  }

  function valueAt(group, epoch, id) {
    if (!group) return null;
    const i = ES.nearest(group.epochs.data, epoch);
    if (id < 0 || id >= group.n) return null;
    return group.values.data[i * group.n + id];
  }

  // Which panels to show: all heads; or the selected neuron and its cluster-mates.
  function panelIds(sp, st, shownEpoch) {
    if (sp.mode !== "neuron") return sp.ids.map((id, m) => ({ id: id, m: m }));
    const index = new Map(sp.ids.map((id, m) => [id, m]));
    const mine = valueAt(sp.group, shownEpoch, st.neuron);
    const out = [{ id: st.neuron, m: index.has(st.neuron) ? index.get(st.neuron) : -1 }];
    const mates = sp.ids.filter((id) => id !== st.neuron && mine && valueAt(sp.group, shownEpoch, id) === mine);
    const others = sp.ids.filter((id) => id !== st.neuron && mates.indexOf(id) < 0)
      .sort((a, b) => Math.abs(a - st.neuron) - Math.abs(b - st.neuron));
    mates.concat(others).slice(0, 7).forEach((id) => out.push({ id: id, m: index.get(id) }));
    return out;
  }

  // A neuron without a stored full-resolution map: draw its atlas reconstruction instead (the
  // atlas chart's arrays are decoded on first need; the maps redraw when they are ready).
  function rebuildFromAtlas(ch, st, canvas, id) {
    const atlas = ES.app.charts.neuron_atlas;
    if (!atlas || atlas.status !== "ok") return false;
    if (!atlas.spec) {
      if (!ch.askedAtlas) { ch.askedAtlas = true; ES.app.specOf("neuron_atlas").then(() => ES.app.redraw(ch.name)); }
      return false;
    }
    const sp = atlas.spec;
    if (id < 0 || id >= sp.neurons) return false;
    const e = ES.nearest(sp.epochs.data, st.epoch);
    paint(canvas, atlasMap(sp, atlasModel(atlas), e, id), sp.p, sp.p, viridis());
    return true;
  }

  function drawMaps(ch, st, el) {
    const sp = ch.spec;
    const e = ES.nearest(sp.epochs.data, st.epoch);
    ch.shownEpoch = sp.epochs.data[e];
    const M = sp.maps.shape[1], H = sp.maps.shape[2], W = sp.maps.shape[3];
    const lut = viridis();
    const panels = panelIds(sp, st, ch.shownEpoch);
    let grid = el.querySelector(".maps-grid");
    if (!grid) {
      grid = document.createElement("div");
      grid.className = "maps-grid";
      // Whole-pixel zoom keeps fine periodic stripes free of moire.
      const side = Math.max(1, Math.round(170 / W)) * W;
      grid.style.gridTemplateColumns = "repeat(auto-fill, minmax(" + side + "px, " + side + "px))";
      grid.style.setProperty("--map-side", side + "px");
      el.appendChild(grid);
    }
    while (grid.children.length > panels.length) grid.removeChild(grid.lastChild);
    panels.forEach((p, k) => {
      let fig = grid.children[k];
      if (!fig) {
        fig = document.createElement("figure");
        fig.className = "map-panel";
        const canvas = document.createElement("canvas");
        const cap = document.createElement("figcaption");
        const badge = document.createElement("span");
        badge.className = "badge";
        const label = document.createElement("span");
        const readout = document.createElement("span");
        readout.className = "readout";
        cap.append(label, badge, readout);
        fig.append(canvas, cap);
        grid.appendChild(fig);
        canvas.addEventListener("click", () => ES.app.select(sp.mode, Number(fig.dataset.id)));
        canvas.addEventListener("mousemove", (ev) => {
          const m = Number(fig.dataset.m);
          if (m < 0) return;
          const r = canvas.getBoundingClientRect();
          const b = Math.floor(((ev.clientX - r.left) / r.width) * W), a = Math.floor(((ev.clientY - r.top) / r.height) * H);
          const src = ES.row(sp.maps, Number(fig.dataset.e));
          const v = src[(m * H + a) * W + b];
          readout.textContent = " a=" + a + " b=" + b + ": " + (v === v ? v.toPrecision(3) : "NaN");
        });
        canvas.addEventListener("mouseleave", () => { readout.textContent = ""; });
      }
      fig.dataset.id = p.id; fig.dataset.m = p.m; fig.dataset.e = e;
      const canvas = fig.firstChild;
      const [label, badge] = fig.lastChild.children;
      label.textContent = sp.label + " " + (sp.names ? sp.names[p.id] : p.id);
      fig.classList.toggle("selected", p.id === (sp.mode === "head" ? st.head : st.neuron));
      const freq = sp.mode === "head" ? valueAt(sp.badge, ch.shownEpoch, p.id) : valueAt(sp.group, ch.shownEpoch, p.id);
      badge.textContent = freq ? (sp.badge ? sp.badge.prefix : "k = ") + freq : "";
      badge.hidden = !freq;
      canvas.width = W; canvas.height = H;
      const ctx = canvas.getContext("2d");
      fig.classList.remove("rebuilt");
      if (p.m < 0 && sp.mode === "neuron" && rebuildFromAtlas(ch, st, canvas, p.id)) {
        fig.classList.remove("missing");
        fig.classList.add("rebuilt");
        fig.title = "No full-resolution map is stored for this neuron: rebuilt from its Fourier terms (Every neuron section)";
        return;
      }
      if (p.m < 0) {
        fig.classList.add("missing");
        ctx.fillStyle = "#eef0f5"; ctx.fillRect(0, 0, W, H);
        fig.title = "This neuron's map is not embedded in this report (size budget)";
        return;
      }
      fig.classList.remove("missing");
      fig.title = "";
      const src = ES.row(sp.maps, e).subarray(p.m * H * W, (p.m + 1) * H * W);
      let lo = Infinity, hi = -Infinity;
      for (let q = 0; q < src.length; q++) { const v = src[q]; if (v < lo) lo = v; if (v > hi) hi = v; }
      const span = hi > lo ? hi - lo : 1;
      const img = ctx.createImageData(W, H);
      for (let q = 0; q < src.length; q++) {
        const v = src[q];
        if (v !== v) { img.data[q * 4 + 3] = 0; continue; }
        const c = Math.round(((v - lo) / span) * 255) * 3;
        img.data[q * 4] = lut[c]; img.data[q * 4 + 1] = lut[c + 1]; img.data[q * 4 + 2] = lut[c + 2]; img.data[q * 4 + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
    });
  }

  // ---------------------------------------------------------------- bars per category
  // One bar trace per series over categorical x (generations...), stacked or side by side;
  // `labels` are short texts written above each x (e.g. "1 distinct").
  function bars(ch, st) {
    const sp = ch.spec;
    const xs = Array.from(sp.x, (v) => esc(v));
    const data = sp.traces.map((t) => ({ type: "bar", x: xs, y: Array.from(t.y.data), name: esc(t.name),
      marker: { color: color(t.color) },
      hovertemplate: esc(sp.xTitle || "") + " %{x}: %{y} " + esc(t.unit || "") + "<extra>" + esc(t.name) + "</extra>" }));
    const layout = baseLayout(ch, st, { barmode: sp.stacked ? "stack" : "group", bargap: 0.3 });
    layout.xaxis.title = { text: esc(sp.xTitle || "") };
    layout.xaxis.type = "category";
    layout.yaxis.title = { text: esc(sp.yTitle || "") };
    (sp.labels || []).forEach((text, i) => {
      if (text) layout.annotations.push({ x: xs[i], y: sp.tops ? sp.tops[i] : 0, yanchor: "bottom", text: esc(text),
        showarrow: false, font: { size: 11, color: "#4a5060" } });
    });
    if (sp.tops) layout.yaxis.range = [0, Math.max.apply(null, sp.tops) * 1.18 || 1];
    return { data: data, layout: layout };
  }

  // ---------------------------------------------------------------- every neuron (atlas, canvas)
  // Each neuron's map is rebuilt from its Fourier terms (generator/charts_atlas.py): the mean
  // plus, per kept frequency k, cos/sin amplitudes along a, b, a + b and a - b.
  const ATLAS_PAGE = 64;
  function atlasModel(ch) {
    if (ch.am) return ch.am;
    const sp = ch.spec, p = sp.p, J = sp.j;
    const cosT = new Float32Array(p), sinT = new Float32Array(p);
    for (let x = 0; x < p; x++) { cosT[x] = Math.cos((2 * Math.PI * x) / p); sinT[x] = Math.sin((2 * Math.PI * x) / p); }
    const seen = new Set(), fr = sp.freqs.data;
    for (let q = 0; q < fr.length; q += J) if (fr[q] > 0) seen.add(fr[q]);
    ch.am = { p: p, M: sp.neurons, J: J, cosT: cosT, sinT: sinT, freqs: Array.from(seen).sort((a, b) => a - b),
      filter: { freq: 0, cluster: "all", coarse: "all", sort: "freq" }, page: 0, lastNeuron: null,
      tmp: [0, 1, 2, 3].map(() => new Float32Array(p)), out: new Float32Array(p * p) };
    return ch.am;
  }

  function atlasMap(sp, am, e, u) {
    const p = am.p, J = am.J, idx = e * am.M + u, base = idx * J, out = am.out, f = am.tmp;
    const sc = sp.scale.data[idx] / sp.levels, mean = sp.mean.data[idx];
    f.forEach((t) => t.fill(0));
    for (let j = 0; j < J; j++) {
      const k = sp.freqs.data[base + j];
      if (k <= 0) continue;
      const c0 = (base + j) * 8;
      for (let slot = 0; slot < 4; slot++) {
        const cc = (sp.codes.data[c0 + 2 * slot] - 128) * sc, ss = (sp.codes.data[c0 + 2 * slot + 1] - 128) * sc;
        if (!cc && !ss) continue;
        const t = f[slot];
        for (let x = 0; x < p; x++) { const i = (k * x) % p; t[x] += cc * am.cosT[i] + ss * am.sinT[i]; }
      }
    }
    for (let a = 0; a < p; a++) {
      const row = a * p, va = mean + f[0][a];
      for (let b = 0; b < p; b++) out[row + b] = va + f[1][b] + f[2][(a + b) % p] + f[3][(a - b + p) % p];
    }
    return out;
  }

  function paint(canvas, values, W, H, lut, lo, hi) {
    // Resizing a canvas reallocates its backing store: only when the size changes.
    if (canvas.width !== W) canvas.width = W;
    if (canvas.height !== H) canvas.height = H;
    const ctx = canvas.getContext("2d");
    if (!canvas._img || canvas._img.width !== W || canvas._img.height !== H) canvas._img = ctx.createImageData(W, H);
    const img = canvas._img;
    if (lo === undefined) {
      lo = Infinity; hi = -Infinity;
      for (let q = 0; q < values.length; q++) { const v = values[q]; if (v < lo) lo = v; if (v > hi) hi = v; }
    }
    const span = hi > lo ? hi - lo : 1;
    for (let q = 0; q < W * H; q++) {
      const v = values[q];
      if (v !== v) { img.data[q * 4] = img.data[q * 4 + 1] = img.data[q * 4 + 2] = 220; img.data[q * 4 + 3] = 255; continue; }
      const c = Math.max(0, Math.min(255, Math.round(((v - lo) / span) * 255))) * 3;
      img.data[q * 4] = lut[c]; img.data[q * 4 + 1] = lut[c + 1]; img.data[q * 4 + 2] = lut[c + 2]; img.data[q * 4 + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return ctx;
  }

  function option(sel, value, text) {
    const o = document.createElement("option");
    o.value = value; o.textContent = text; sel.appendChild(o);
    return o;
  }

  function labelled(text, control) {
    const l = document.createElement("label");
    l.append(document.createTextNode(text + " "), control);
    return l;
  }

  function atlasToolbar(ch, st, el) {
    const sp = ch.spec, am = atlasModel(ch);
    const bar = document.createElement("div");
    bar.className = "tbl-bar atlas-bar";
    const freq = document.createElement("select");
    option(freq, "0", "all");
    am.freqs.forEach((k) => option(freq, String(k), "k = " + k));
    freq.addEventListener("change", () => { am.filter.freq = Number(freq.value); am.page = 0; drawAtlas(ch, ES.app.state, el); });
    bar.appendChild(labelled("dominant frequency", freq));
    if (sp.group) {
      const cl = document.createElement("select");
      [["all", "all"], ["in", "in a cluster"], ["out", "in no cluster"], ["mine", "the selected neuron's"]].forEach((o) => option(cl, o[0], o[1]));
      cl.addEventListener("change", () => { am.filter.cluster = cl.value; am.page = 0; drawAtlas(ch, ES.app.state, el); });
      bar.appendChild(labelled("cluster", cl));
    }
    if (sp.coarse) {
      const co = document.createElement("select");
      [["all", "all"], ["fine", "< 0.2 (fine)"], ["mid", "0.2 – 0.5"], ["coarse", "≥ 0.5 (coarse)"]].forEach((o) => option(co, o[0], o[1]));
      co.addEventListener("change", () => { am.filter.coarse = co.value; am.page = 0; drawAtlas(ch, ES.app.state, el); });
      bar.appendChild(labelled("coarseness", co));
    }
    const sort = document.createElement("select");
    [["freq", "frequency, then residual"], ["residual", "residual (worst first)"], ["id", "neuron number"]].forEach((o) => option(sort, o[0], o[1]));
    sort.addEventListener("change", () => { am.filter.sort = sort.value; am.page = 0; drawAtlas(ch, ES.app.state, el); });
    bar.appendChild(labelled("sort by", sort));
    const pager = document.createElement("span");
    pager.className = "tbl-pager atlas-pager";
    const prev = document.createElement("button"), next = document.createElement("button"), where = document.createElement("span");
    prev.type = next.type = "button"; prev.textContent = "◀"; next.textContent = "▶";
    prev.setAttribute("aria-label", "Previous page of neurons"); next.setAttribute("aria-label", "Next page of neurons");
    prev.addEventListener("click", () => { am.page = Math.max(0, am.page - 1); drawAtlas(ch, ES.app.state, el); });
    next.addEventListener("click", () => { am.page += 1; drawAtlas(ch, ES.app.state, el); });
    pager.append(prev, where, next);
    bar.appendChild(pager);
    const grid = document.createElement("div");
    grid.className = "maps-grid atlas-grid";
    const side = Math.max(1, Math.round(100 / sp.p)) * sp.p;
    grid.style.gridTemplateColumns = "repeat(auto-fill, minmax(" + side + "px, " + side + "px))";
    grid.style.setProperty("--map-side", side + "px");
    el.replaceChildren(bar, grid);
    am.els = { grid: grid, where: where, prev: prev, next: next };
  }

  // Height the atlas will take (its first page), reserved before it draws so that drawing it
  // does not push the charts below it out of view.
  function atlasHeight(sp, width) {
    const side = Math.max(1, Math.round(100 / sp.p)) * sp.p;
    const cols = Math.max(1, Math.floor((width + 8) / (side + 8)));
    return 44 + Math.ceil(Math.min(ATLAS_PAGE, sp.neurons) / cols) * (side + 8 + 22);
  }

  function atlasAt(group, epoch, u, n) {
    if (!group) return null;
    const i = ES.nearest(group.epochs.data, epoch);
    return group.values.data[i * n + u];
  }

  function drawAtlas(ch, st, el) {
    const sp = ch.spec, am = atlasModel(ch);
    if (!am.els) atlasToolbar(ch, st, el);
    const e = ES.nearest(sp.epochs.data, st.epoch);
    ch.shownEpoch = sp.epochs.data[e];
    const M = am.M, J = am.J, fr = sp.freqs.data, res = sp.residual.data;
    const mine = sp.group ? atlasAt(sp.group, ch.shownEpoch, st.neuron, M) : null;
    const keep = [];
    for (let u = 0; u < M; u++) {
      const k = fr[(e * M + u) * J];
      if (am.filter.freq && (k !== am.filter.freq || !(sp.scale.data[e * M + u] > 0))) continue;
      if (sp.group && am.filter.cluster !== "all") {
        const g = atlasAt(sp.group, ch.shownEpoch, u, M);
        if (am.filter.cluster === "in" ? !g : am.filter.cluster === "out" ? g : g !== mine || !g) continue;
      }
      if (sp.coarse && am.filter.coarse !== "all") {
        const c = atlasAt(sp.coarse, ch.shownEpoch, u, M);
        if (am.filter.coarse === "fine" ? !(c < 0.2) : am.filter.coarse === "mid" ? !(c >= 0.2 && c < 0.5) : !(c >= 0.5)) continue;
      }
      keep.push(u);
    }
    const r = (u) => res[e * M + u];
    const flat = (u) => !(sp.scale.data[e * M + u] > 0);  // a constant map: no frequency to show
    const fk = (u) => (flat(u) ? 1e9 : fr[(e * M + u) * J]);
    if (am.filter.sort === "freq") keep.sort((a, b) => fk(a) - fk(b) || r(a) - r(b) || a - b);
    else if (am.filter.sort === "residual") keep.sort((a, b) => r(b) - r(a) || a - b);
    const pages = Math.max(1, Math.ceil(keep.length / ATLAS_PAGE));
    if (am.lastNeuron !== st.neuron) {
      // A neuron selected elsewhere: show the page that holds it.
      const at = keep.indexOf(st.neuron);
      if (am.lastNeuron !== null && at >= 0) am.page = Math.floor(at / ATLAS_PAGE);
      am.lastNeuron = st.neuron;
    }
    am.page = Math.max(0, Math.min(am.page, pages - 1));
    const shown = keep.slice(am.page * ATLAS_PAGE, (am.page + 1) * ATLAS_PAGE);
    am.els.where.textContent = "page " + (am.page + 1) + " of " + pages + " (" + keep.length + " of " + M + " neurons)";
    am.els.prev.disabled = am.page === 0; am.els.next.disabled = am.page >= pages - 1;
    const grid = am.els.grid, lut = viridis(), p = am.p;
    while (grid.children.length > shown.length) grid.removeChild(grid.lastChild);
    shown.forEach((u, q) => {
      let fig = grid.children[q];
      if (!fig) {
        fig = document.createElement("figure");
        fig.className = "map-panel";
        const canvas = document.createElement("canvas");
        const cap = document.createElement("figcaption");
        cap.append(document.createElement("span"), document.createElement("span"));
        cap.lastChild.className = "badge";
        fig.append(canvas, cap);
        grid.appendChild(fig);
        canvas.addEventListener("click", () => ES.app.setNeuron(Number(fig.dataset.id)));
      }
      fig.dataset.id = u;
      const k = flat(u) ? 0 : fr[(e * M + u) * J], rv = r(u);
      const [label, badge] = fig.lastChild.children;
      label.textContent = "n" + u + (flat(u) ? " · constant" : " · r " + (rv === rv ? rv.toFixed(2) : "?"));
      badge.textContent = k > 0 ? "k = " + k : "";
      badge.hidden = !(k > 0);
      fig.classList.toggle("selected", u === st.neuron);
      fig.classList.toggle("rough", rv > 0.5);
      fig.title = "neuron " + u + ": dominant k = " + k + "; residual " + (rv === rv ? rv.toFixed(3) : "?") +
        " of its variance not rebuilt from " + J + " frequencies. Click to select it.";
      paint(fig.firstChild, atlasMap(sp, am, e, u), p, p, lut);
    });
  }

  // ---------------------------------------------------------------- per-input maps (canvas)
  // p x p grids (row a, column b) at the selected epoch; click a cell to select that input.
  function diverging() {
    const lut = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const t = i / 255 * 2 - 1, w = 1 - Math.abs(t);
      const c = t < 0 ? [214, 39, 40] : [33, 102, 172];
      for (let q = 0; q < 3; q++) lut[i * 3 + q] = c[q] + w * (247 - c[q]);
    }
    return lut;
  }

  function bitAt(bits, row, nPer, i) {
    const byte = bits[row * Math.ceil(nPer / 8) + (i >> 3)];
    return (byte >> (7 - (i & 7))) & 1;
  }

  function inputText(sp, i) {
    const p = sp.p, a = Math.floor(i / p), b = i % p;
    const split = sp.inTrain ? (bitAt(sp.inTrain.data, 0, p * p, i) ? " (train)" : " (test)") : "";
    return a + " + " + b + " = " + ((a + b) % p) + split;
  }

  function panelValues(sp, pn, e) {
    const n = sp.p * sp.p;
    if (pn.bits) { const out = new Float32Array(n); for (let i = 0; i < n; i++) out[i] = bitAt(pn.bits.data, e, n, i); return out; }
    if (pn.int) { const out = new Float32Array(n); for (let i = 0; i < n; i++) { const v = pn.int.data[i] + pn.offset; out[i] = v < 0 ? NaN : v; } return out; }
    return ES.row(pn.z, e);
  }

  function drawInputs(ch, st, el) {
    const sp = ch.spec, p = sp.p, n = p * p;
    const e = sp.epochs ? ES.nearest(sp.epochs.data, st.epoch) : 0;
    if (sp.epochs) ch.shownEpoch = sp.epochs.data[e];
    if (!ch.iv) {
      ch.iv = { mode: "all" };
      const bar = document.createElement("div");
      bar.className = "tbl-bar";
      if (sp.inTrain) {
        const mode = document.createElement("select");
        [["all", "all inputs"], ["train", "train only"], ["test", "test only"], ["outline", "all, test inputs dimmed"]].forEach((o) => option(mode, o[0], o[1]));
        mode.addEventListener("change", () => { ch.iv.mode = mode.value; drawInputs(ch, ES.app.state, el); });
        bar.appendChild(labelled("show", mode));
      }
      const readout = document.createElement("span");
      readout.className = "readout";
      bar.appendChild(readout);
      const grid = document.createElement("div");
      grid.className = "maps-grid input-grid";
      const side = Math.max(1, Math.round(260 / p)) * p;
      grid.style.gridTemplateColumns = "repeat(auto-fill, minmax(" + side + "px, " + side + "px))";
      grid.style.setProperty("--map-side", side + "px");
      const figs = sp.panels.map((pn, k) => {
        const fig = document.createElement("figure");
        fig.className = "map-panel";
        const canvas = document.createElement("canvas");
        const cap = document.createElement("figcaption");
        cap.append(document.createElement("span"), document.createElement("span"));
        fig.append(canvas, cap);
        const cell = (ev) => {
          const r = canvas.getBoundingClientRect();
          const b = Math.floor(((ev.clientX - r.left) / r.width) * p), a = Math.floor(((ev.clientY - r.top) / r.height) * p);
          return a >= 0 && a < p && b >= 0 && b < p ? a * p + b : -1;
        };
        canvas.addEventListener("click", (ev) => { const i = cell(ev); if (i >= 0) ES.app.setInput(i); });
        canvas.addEventListener("mousemove", (ev) => {
          const i = cell(ev);
          if (i < 0) return;
          const v = ch.iv.values[k][i];
          const text = pn.labels ? pn.labels[v] : v !== v ? (pn.missing || "NaN") : fmtNum(pn.log10 ? Math.pow(10, v) : pn.int ? Math.round(v) : v);
          readout.textContent = inputText(sp, i) + " · " + pn.title + ": " + text;
        });
        canvas.addEventListener("mouseleave", () => { readout.textContent = ""; });
        grid.appendChild(fig);
        return fig;
      });
      el.replaceChildren(bar, grid);
      ch.iv.figs = figs;
    }
    const inTrain = (i) => bitAt(sp.inTrain.data, 0, n, i);
    ch.iv.values = sp.panels.map((pn) => panelValues(sp, pn, e));
    sp.panels.forEach((pn, k) => {
      const fig = ch.iv.figs[k], canvas = fig.firstChild, vals = ch.iv.values[k];
      let lo, hi, lut = viridis();
      if (pn.bits) { lut = new Uint8ClampedArray(256 * 3); [[214, 39, 40], [44, 160, 44]].forEach((c, s) => { for (let q = 0; q < 3; q++) lut[s * 255 * 3 + q] = c[q]; }); lo = 0; hi = 1; }
      else {
        lo = Infinity; hi = -Infinity;
        for (let i = 0; i < n; i++) { const v = vals[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
        if (pn.diverging) { const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1; lo = -m; hi = m; lut = diverging(); }
      }
      const ctx = paint(canvas, vals, p, p, lut, lo, hi);
      if (sp.inTrain && ch.iv.mode !== "all") {
        const img = ctx.getImageData(0, 0, p, p);
        for (let i = 0; i < n; i++) {
          const tr = inTrain(i);
          const hide = (ch.iv.mode === "train" && !tr) || (ch.iv.mode === "test" && tr);
          const dim = ch.iv.mode === "outline" && !tr;
          if (hide) { img.data[i * 4] = img.data[i * 4 + 1] = img.data[i * 4 + 2] = 238; }
          else if (dim) { for (let q = 0; q < 3; q++) img.data[i * 4 + q] = 0.45 * img.data[i * 4 + q] + 0.55 * 255; }
        }
        ctx.putImageData(img, 0, 0);
      }
      if (st.input >= 0 && st.input < n) {
        const a = Math.floor(st.input / p), b = st.input % p;
        ctx.fillStyle = "rgba(0, 0, 0, 0.4)"; // a light crosshair: the cell itself stays visible
        ctx.fillRect(b, 0, 1, Math.max(0, a - 1)); ctx.fillRect(b, a + 2, 1, p);
        ctx.fillRect(0, a, Math.max(0, b - 1), 1); ctx.fillRect(b + 2, a, p, 1);
      }
      const [title, scale] = fig.lastChild.children;
      title.textContent = pn.title;
      scale.textContent = pn.labels ? " red " + pn.labels[0] + ", green " + pn.labels[1] :
        " " + fmtNum(lo) + " … " + fmtNum(hi) + (pn.unit ? " " + pn.unit : "");
      fig.classList.toggle("selected", false);
    });
    const ro = el.querySelector(".readout");
    if (ro && st.input >= 0 && st.input < n && !ro.matches(":hover")) {
      ro.textContent = "selected: " + inputText(sp, st.input) + " · " + sp.panels.map((pn, k) => {
        const v = ch.iv.values[k][st.input];
        if (pn.labels) return pn.labels[v];
        return pn.title.split(" (")[0] + " " + (v !== v ? (pn.missing || "NaN") : fmtNum(pn.log10 ? Math.pow(10, v) : pn.int ? Math.round(v) : v));
      }).join(", ");
    }
  }

  // ---------------------------------------------------------------- probe traces (Plotly)
  function probeChoice(sp, st) {
    const p = sp.p;
    for (let q = 0; q < sp.probes.length; q++) {
      const pr = sp.probes[q];
      for (let i = 0; i < pr.a.length; i++) if (pr.a[i] * p + pr.b[i] === st.input) return { q: q, i: i, hit: true };
    }
    return { q: 0, i: 0, hit: false };
  }

  function probeBar(ch) {
    if (ch.pbar) return ch.pbar;
    const sp = ch.spec, bar = document.createElement("div");
    bar.className = "tbl-bar";
    const sel = document.createElement("select");
    sp.probes.forEach((pr, q) => pr.a.forEach((a, i) => {
      const split = pr.inTrain[i] === 1 ? "train" : pr.inTrain[i] === 0 ? "test" : "split unknown";
      option(sel, q + ":" + i, a + " + " + pr.b[i] + " = " + pr.label[i] + " (" + split + ") · probe " + pr.name);
    }));
    sel.addEventListener("change", () => {
      const [q, i] = sel.value.split(":").map(Number), pr = sp.probes[q];
      ES.app.setInput(pr.a[i] * sp.p + pr.b[i]);
    });
    const note = document.createElement("span");
    note.className = "readout";
    bar.append(labelled("input", sel), note);
    ch.el.parentNode.insertBefore(bar, ch.el);
    ch.pbar = { sel: sel, note: note };
    return ch.pbar;
  }

  function probe(ch, st) {
    const sp = ch.spec, c = probeChoice(sp, st), pr = sp.probes[c.q], i = c.i;
    if (typeof document !== "undefined" && ch.el && ch.el.parentNode) {
      const bar = probeBar(ch);
      bar.sel.value = c.q + ":" + i;
      bar.note.textContent = c.hit || st.input < 0 ? "" : "the selected input " + Math.floor(st.input / sp.p) + " + " +
        (st.input % sp.p) + " is in no probe (epochscope analyze RUN --probe \"a+b\" traces it); showing the first probed input";
    }
    const x = pr.epochs.data, N = pr.a.length;
    const col = (arr, j, w) => { const out = new Float32Array(x.length); const W = w || 1; for (let t = 0; t < x.length; t++) out[t] = arr.data[(t * N + i) * W + j]; return out; };
    const data = [];
    const line = (y, name, clr, extra) => data.push(Object.assign({ type: "scatter", mode: "lines", x: x, y: y, name: esc(name),
      line: { color: color(clr), width: 1.6 }, hovertemplate: "%{y:.3g} at epoch %{x}<extra>" + esc(name) + "</extra>" }, extra || {}));
    line(col(pr.logit_centred, 0), "correct logit − mean (total)", "#1d2330", { line: { color: "#1d2330", width: 2.6 } });
    line(col(pr.dla_embed, 0), "embeddings", 7);
    const H = pr.dla_heads.shape[2] || 1;
    for (let h = 0; h < H; h++) line(col(pr.dla_heads, h, H), "head " + h, 1, { line: { color: color(1), width: 1.3, dash: ["solid", "dash", "dot", "dashdot"][h % 4] } });
    line(col(pr.dla_mlp, 0), "MLP (total)", 2, { line: { color: color(2), width: 2.2 } });
    const F = pr.dla_mlp_freq.shape[2] || 0;
    for (let f = 0; f < F; f++) line(col(pr.dla_mlp_freq, f, F), "MLP via k = " + (pr.keyFreqs[f] !== undefined ? pr.keyFreqs[f] : f), 4 + f, { line: { color: color(4 + f), width: 1.3 } });
    line(col(pr.dla_mlp_mean, 0), "MLP mean part", 2, { line: { color: color(2), width: 1, dash: "dot" } });
    line(col(pr.dla_mlp_other, 0), "MLP other (not key freqs)", 3, { line: { color: color(3), width: 1.3, dash: "dash" } });
    const S = pr.lens_logprob.shape[2] || 3;
    for (let s = 0; s < S; s++) line(col(pr.lens_logprob, s, S), "lens: log p(correct) after " + (pr.stages[s] || s), 8 + s,
      { yaxis: "y2", legendgroup: "lens", line: { color: ["#9aa0ad", "#5e6470", "#1d2330"][s % 3], width: 1.6 } });
    const layout = baseLayout(ch, st, { height: 560 });
    layout.yaxis = Object.assign(layout.yaxis, { domain: [0.42, 1], title: { text: "logit attribution to " + pr.label[i] } });
    layout.yaxis2 = { domain: [0, 0.33], anchor: "x", title: { text: "log p(correct), logit lens" }, zeroline: false, gridcolor: "#e6e8ef", automargin: true };
    layout.legend = { orientation: "v", x: 1.01, xanchor: "left", y: 1, font: { size: 11 } };
    layout.margin.r = 210;
    layout.xaxis.anchor = "y2"; // one epoch axis, under the lens panel
    layout.shapes.push({ type: "line", xref: "paper", yref: "paper", x0: 0, x1: 1, y0: 0.375, y1: 0.375,
      line: { color: "#c8ccd6", width: 1 } });
    return timeDecor(ch, st, { data: data, layout: layout });
  }

  // Overlays drawn over a Plotly chart in data coordinates (the epoch line, the selected point
  // of a trajectory): moving one is a style change, not a replot. Plotly's axes convert data
  // to pixels; the overlay follows zooming and resizing through plotly_afterplot.
  function overlay(el, cls) {
    let o = el.querySelector(":scope > ." + cls);
    if (!o) { o = document.createElement("div"); o.className = cls; el.appendChild(o); }
    return o;
  }

  function toPixel(ax, v) {
    const px = ax.l2p(ax.c2l(v));
    return isFinite(px) && px >= -1 && px <= ax._length + 1 ? px : null;
  }

  function placeOverlay(ch, st) {
    const el = ch.el, fl = el._fullLayout;
    if (!fl || !fl.xaxis) return;
    const size = fl._size;
    if (ch.kind === "trajectory") {
      const sp = ch.spec, i = ES.nearest(sp.epochs.data, st.epoch);
      ch.shownEpoch = sp.epochs.data[i];
      const ring = overlay(el, "ring-marker");
      const x = toPixel(fl.xaxis, sp.xs.data[i]), y = toPixel(fl.yaxis, sp.ys.data[i]);
      ring.hidden = x === null || y === null;
      if (!ring.hidden) ring.style.transform = "translate(" + (size.l + x) + "px," + (size.t + y) + "px)";
      ring.title = "selected: epoch " + ch.shownEpoch;
      return;
    }
    const line = overlay(el, "epoch-marker");
    const x = toPixel(fl.xaxis, st.epoch);
    line.hidden = x === null;
    if (!line.hidden) {
      line.style.transform = "translateX(" + (size.l + x) + "px)";
      line.style.top = size.t + "px";
      line.style.height = size.h + "px";
    }
  }

  function moveOverlay(ch, st) {
    placeOverlay(ch, st);
    return Promise.resolve();
  }

  function newProfile(ch, st, el) {
    const sp = ch.spec;
    const i = ES.nearest(sp.epochs.data, st.epoch);
    ch.shownEpoch = sp.epochs.data[i];
    const update = { y: sp.traces.map((t) => ES.row(t.y, i)) };
    if (sp.traces.some((t) => t.err)) {
      update.error_y = sp.traces.map((t) => (t.err ? { type: "data", array: ES.row(t.err, i), visible: true,
        color: "#1d2330", thickness: 1.2 } : { visible: false }));
    }
    if (sp.bar && sp.traces.every((t) => t.outline)) {
      update["marker.line.width"] = sp.traces.map((t) => Array.from(ES.row(t.outline, i), (m) => (m ? 2 : 0)));
    }
    return Plotly.restyle(el, update, sp.traces.map((_, k) => k));
  }

  ES.esc = esc;
  ES.ema = ema;
  ES.eventColor = eventColor;
  ES.kinds = {
    lines: { figure: lines, onEpoch: moveOverlay, overlay: placeOverlay },
    heatmap_time: { figure: heatmapTime, onEpoch: moveOverlay, overlay: placeOverlay,
      reserve: (sp) => (sp.rowsPerPx ? Math.min(760, 120 + 9 * sp.yLabels.length) : 0) },
    profile: { figure: profile, onEpoch: newProfile },
    trajectory: { figure: trajectory, onEpoch: moveOverlay, overlay: placeOverlay },
    clusters: { figure: clusters },
    maps: { draw: drawMaps },
    map2d: { figure: map2d },
    timeline: { figure: timeline, onEpoch: moveOverlay, overlay: placeOverlay },
    window_lines: { figure: windowLines },
    bars: { figure: bars },
    atlas: { draw: drawAtlas, reserve: atlasHeight },
    input_grid: { draw: drawInputs, reserve: (sp) => 60 + Math.max(1, Math.round(260 / sp.p)) * sp.p },
    probe: { figure: probe, onEpoch: moveOverlay, overlay: placeOverlay, reserve: () => 600 },
    // The rows scroll inside a box of at most 640 px (report.css .tbl-wrap); the bar and pager add ~80.
    table: { draw: drawTable, reserve: (sp) => (sp.rows ? Math.min(720, 84 + 29 * Math.min(PAGE_ROWS, sp.rows)) : 0) },
    events: { draw: drawTable },
  };
})(window.ES);
