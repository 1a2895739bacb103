/* epochscope report, part 3 of 3: state, controls, lazy rendering, URL hash.
 *
 * Global state: the epoch (snapped to the nearest analysed checkpoint), the neuron, the head,
 * per-chart log scales and the event-line switch. Charts render only when they scroll into
 * view (IntersectionObserver); a state change redraws the visible charts that depend on it
 * and marks the others dirty, to be redrawn when they next come into view. The state lives in
 * the URL hash, so a copied link reopens the same view.
 */
(function (ES) {
  const page = (ES.page = JSON.parse(document.getElementById("es-data").textContent));
  const store = new ES.ArrayStore(page.arrays);
  const CONFIG = { displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
    toImageButtonOptions: { format: "png", scale: 2 } };
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  const st = { epoch: 0, neuron: 0, head: 0, input: -1, logy: new Set(), logx: new Set(), events: true, smooth: 0,
    hiddenKinds: new Set(page.eventKinds.filter((k) => k.hidden).map((k) => k.kind)), sidebar: true, view: "" };
  const charts = {};
  let snap = new Int32Array(0);
  // firstPaint: the first chart is on screen (a preview or the real one); firstInteractive: the
  // first Plotly chart is (see chart_preview.js).
  const stats = { draws: 0, lastUpdateMs: 0, appStart: performance.now(), firstDraw: null, firstPaint: null,
    firstInteractive: null };

  Object.keys(page.charts).forEach((name) => {
    const c = page.charts[name];
    const card = document.getElementById("c-" + name);
    if (!card) return;
    charts[name] = Object.assign({}, c, { name: name, card: card, el: $(".plot", card), raw: c.spec,
      spec: null, visible: false, dirty: true, busy: Promise.resolve(), bound: false });
    if (c.logy) st.logy.add(name);
  });

  // ------------------------------------------------------------------ state <-> URL hash
  function readHash() {
    const h = new URLSearchParams(location.hash.replace(/^#/, ""));
    const num = (k) => (h.has(k) && h.get(k) !== "" && isFinite(Number(h.get(k))) ? Number(h.get(k)) : null);
    const set = (k) => new Set(h.get(k).split(",").filter((n) => n in charts));
    const out = {};
    if (num("epoch") !== null) out.epoch = num("epoch");
    if (num("neuron") !== null) out.neuron = num("neuron");
    if (num("head") !== null) out.head = num("head");
    if (num("input") !== null) out.input = num("input");
    if (h.has("logy")) out.logy = set("logy");
    if (h.has("logx")) out.logx = set("logx");
    if (h.has("events")) out.events = h.get("events") !== "0";
    if (h.has("hide")) out.hiddenKinds = new Set(h.getAll("hide").filter((k) => k !== ""));
    if (h.has("sidebar")) out.sidebar = h.get("sidebar") !== "0";
    if (h.has("view")) out.view = h.get("view");
    if (num("smooth") !== null) out.smooth = Math.max(0, Math.min(0.999, num("smooth")));
    return out;
  }

  let hashTimer = null;
  function writeHash() {
    clearTimeout(hashTimer);
    hashTimer = setTimeout(() => {
      const h = new URLSearchParams();
      h.set("epoch", st.epoch);
      if (page.limits.neuron) h.set("neuron", st.neuron);
      if (page.limits.head) h.set("head", st.head);
      if (st.input >= 0) h.set("input", st.input);
      h.set("logy", Array.from(st.logy).join(","));
      if (st.logx.size) h.set("logx", Array.from(st.logx).join(","));
      if (!st.events) h.set("events", "0");
      const hidden = Array.from(st.hiddenKinds);
      const defaults = page.eventKinds.filter((k) => k.hidden).map((k) => k.kind);
      if (hidden.length !== defaults.length || hidden.some((k) => defaults.indexOf(k) < 0)) {
        if (!hidden.length) h.append("hide", "");
        hidden.forEach((k) => h.append("hide", k));
      }
      if (!st.sidebar) h.set("sidebar", "0");
      if (st.view) h.set("view", st.view);
      if (st.smooth) h.set("smooth", st.smooth);
      const text = "#" + h.toString().replace(/%2C/g, ",");
      if (location.hash !== text) history.replaceState(null, "", text);
    }, 120);
  }

  // ------------------------------------------------------------------ drawing
  function tagEpoch(ch) {
    const tag = $(".epoch-tag", ch.card);
    if (!tag || ch.shownEpoch === undefined) return;
    tag.textContent = "epoch " + ch.shownEpoch + (ch.shownEpoch !== st.epoch ? " (nearest analysed to " + st.epoch + ")" : "");
  }

  // Draw (or redraw) a chart. `epochOnly`: only the epoch changed since it was last drawn,
  // so a kind's fast path may move its epoch-dependent part instead of rebuilding it.
  function draw(ch, epochOnly) {
    const fast = epochOnly && ch.bound && !ch.dirty;
    ch.busy = ch.busy.then(async () => {
      if (!ch.spec) ch.spec = await store.resolve(ch.raw);
      const kind = ES.kinds[ch.kind];
      ch.dirty = false;
      if (kind.draw) kind.draw(ch, st, ch.el);
      else if (fast && kind.onEpoch) await kind.onEpoch(ch, st, ch.el);
      else {
        await ES.preview.loadPlotly();
        const fig = kind.figure(ch, st);
        ES.preview.clear(ch);
        await Plotly.react(ch.el, fig.data, fig.layout, CONFIG);
        if (!ch.bound) bind(ch);
        if (kind.overlay) kind.overlay(ch, st);
        ES.preview.markPainted(stats, "firstInteractive");
      }
      stats.draws++;
      if (stats.firstDraw === null) stats.firstDraw = performance.now();
      ES.preview.markPainted(stats, "firstPaint");
      ch.card.dataset.drawn = String(stats.draws);
      tagEpoch(ch);
    }).catch((err) => {
      console.error("epochscope: chart " + ch.name + " failed:", err);
      ch.card.dataset.drawn = "error";
      ch.el.textContent = "This chart could not be drawn: " + err.message;
    });
    return ch.busy;
  }

  // A chart's resolved spec (its arrays decoded), e.g. for another chart that borrows its data.
  function specOf(name) {
    const ch = charts[name];
    if (!ch) return Promise.resolve(null);
    if (ch.spec) return Promise.resolve(ch.spec);
    return store.resolve(ch.raw).then((spec) => (ch.spec = ch.spec || spec));
  }

  function redraw(name) {
    const ch = charts[name];
    if (!ch || ch.status !== "ok") return Promise.resolve();
    if (ch.visible) return draw(ch);
    ch.dirty = true;
    return Promise.resolve();
  }

  // Before plotly.js runs: a static drawing of the chart's figure (see chart_preview.js).
  function preview(ch) {
    if (!ES.kinds[ch.kind].draw) ES.preview.show(ch, store, (c) => ES.kinds[c.kind].figure(c, st), stats);
  }

  function bind(ch) {
    ch.bound = true;
    const kind = ES.kinds[ch.kind];
    if (kind.overlay) ch.el.on("plotly_afterplot", () => kind.overlay(ch, st));
    ch.el.on("plotly_click", (ev) => {
      const p = ev && ev.points && ev.points[0];
      if (!p) return;
      if (ch.kind === "clusters") { select("neuron", parseInt(String(p.y).slice(1), 10)); return; }
      if (ch.kind === "trajectory") { if (p.customdata !== undefined) setEpoch(Number(p.customdata)); return; }
      if (ch.kind === "timeline") { const e = p.customdata !== undefined ? p.customdata : p.x; if (typeof e === "number") setEpoch(e); return; }
      // A heatmap with a row per neuron: the click selects the neuron as well as the epoch.
      if (ch.spec && ch.spec.neuronRows && typeof p.y === "string" && /^n\d+/.test(p.y)) select("neuron", parseInt(p.y.slice(1), 10));
      if (ch.epochAxis && typeof p.x === "number") setEpoch(p.x);
    });
  }

  // Redraw visible charts that follow one of `keys`; mark the others dirty.
  function refresh(keys) {
    const jobs = [];
    const epochOnly = keys.length === 1 && keys[0] === "epoch";
    Object.values(charts).forEach((ch) => {
      if (ch.status !== "ok" || !ch.follows.some((k) => keys.indexOf(k) >= 0)) return;
      if (ch.visible) jobs.push(draw(ch, epochOnly));
      else ch.dirty = true;
    });
    return Promise.all(jobs);
  }

  // ------------------------------------------------------------------ state changes
  function snapEpoch(e) {
    if (!snap.length) return Math.round(e);
    return snap[ES.nearest(snap, e)];
  }

  function setEpoch(e) {
    const t0 = performance.now();
    const next = snapEpoch(Number(e));
    if (next === st.epoch) { syncControls(); return Promise.resolve(); }
    st.epoch = next;
    syncControls();
    writeHash();
    return refresh(["epoch"]).then(() => { stats.lastUpdateMs = performance.now() - t0; });
  }

  function clampInt(v, n) {
    v = Math.round(Number(v));
    if (!isFinite(v)) v = 0;
    return Math.max(0, Math.min(n - 1, v));
  }

  function setNeuron(n) {
    n = clampInt(n, page.limits.neuron || 1);
    if (n === st.neuron) { syncControls(); return Promise.resolve(); }
    st.neuron = n; syncControls(); writeHash();
    return refresh(["neuron"]);
  }

  function setHead(h) {
    h = clampInt(h, page.limits.head || 1);
    if (h === st.head) { syncControls(); return Promise.resolve(); }
    st.head = h; syncControls(); writeHash();
    return refresh(["head"]);
  }

  // The selected (a, b) input, as its row-major index a * p + b (-1: none).
  function setInput(i) {
    i = Math.round(Number(i));
    if (!isFinite(i) || i < -1) i = -1;
    if (i === st.input) return Promise.resolve();
    st.input = i; writeHash();
    return refresh(["input"]);
  }

  function select(mode, id) {
    return mode === "head" ? setHead(id) : setNeuron(id);
  }

  function toggleScale(name, axis) {
    const set = axis === "x" ? st.logx : st.logy;
    if (set.has(name)) set.delete(name); else set.add(name);
    syncControls(); writeHash();
    const ch = charts[name];
    return ch.visible ? draw(ch) : ((ch.dirty = true), Promise.resolve());
  }

  function setKind(kind, shown) {
    if (shown) st.hiddenKinds.delete(kind); else st.hiddenKinds.add(kind);
    return setEvents(st.events);
  }

  function setEvents(on) {
    st.events = !!on; syncControls(); writeHash();
    Object.values(charts).forEach((ch) => { if (ch.epochAxis) ch.dirty = true; });
    return Promise.all(Object.values(charts).filter((ch) => ch.epochAxis && ch.visible && ch.status === "ok").map(draw));
  }

  // Smoothing (exponential moving average weight, 0: off) of the charts that offer it.
  function setSmooth(w) {
    w = Math.max(0, Math.min(0.999, Number(w) || 0));
    if (w === st.smooth) { syncControls(); return Promise.resolve(); }
    st.smooth = w; syncControls(); writeHash();
    const jobs = [];
    Object.values(charts).forEach((ch) => {
      if (!ch.smooth || ch.status !== "ok") return;
      if (ch.visible) jobs.push(draw(ch)); else ch.dirty = true;
    });
    return Promise.all(jobs);
  }

  function setSidebar(open) {
    st.sidebar = !!open;
    document.body.classList.toggle("sidebar-closed", !st.sidebar);
    const b = $("#sb-toggle");
    b.setAttribute("aria-expanded", String(st.sidebar));
    b.title = st.sidebar ? "Hide the controls" : "Show the controls";
    writeHash();
    // Plotly's responsive mode follows window resizes; the sidebar changes the width too.
    setTimeout(() => Object.values(charts).forEach((ch) => {
      if (ch.visible && ch.bound) Plotly.Plots.resize(ch.el);
    }), 220);
  }

  // ------------------------------------------------------------------ controls
  function syncControls() {
    const slider = $("#epoch-slider"), input = $("#epoch-input");
    if (slider && snap.length) slider.value = ES.nearest(snap, st.epoch);
    if (input && document.activeElement !== input) input.value = st.epoch;
    const hint = $("#epoch-hint");
    if (hint) hint.textContent = snap.length ? (ES.nearest(snap, st.epoch) + 1) + " of " + snap.length + " " + page.snapLabel + " (← → keys)" : "";
    const ni = $("#neuron-input");
    if (ni && document.activeElement !== ni) ni.value = st.neuron;
    const hi = $("#head-input");
    if (hi) hi.value = st.head;
    const ev = $("#events-toggle");
    if (ev) ev.checked = st.events;
    const sm = $("#smooth-input"), sv = $("#smooth-value");
    if (sm && document.activeElement !== sm) sm.value = st.smooth;
    if (sv) sv.textContent = st.smooth ? st.smooth.toFixed(2) : "off";
    $$("#event-kinds input").forEach((box) => {
      box.checked = !st.hiddenKinds.has(box.dataset.kind);
      box.disabled = !st.events;
    });
    $$(".scale-btn").forEach((b) => {
      const set = b.dataset.axis === "x" ? st.logx : st.logy;
      b.setAttribute("aria-pressed", String(set.has(b.dataset.chart)));
    });
  }

  function stepSnap(delta) {
    if (!snap.length) return setEpoch(st.epoch + delta);
    const i = Math.max(0, Math.min(snap.length - 1, ES.nearest(snap, st.epoch) + delta));
    return setEpoch(snap[i]);
  }

  function wireControls() {
    const slider = $("#epoch-slider");
    if (slider) {
      slider.max = Math.max(0, snap.length - 1);
      let queued = null;
      slider.addEventListener("input", () => {
        if (queued !== null) return;
        queued = requestAnimationFrame(() => { queued = null; setEpoch(snap[Number(slider.value)]); });
      });
    }
    const onEnter = (el, fn) => {
      if (!el) return;
      el.addEventListener("change", () => fn(el.value));
      el.addEventListener("keydown", (e) => { if (e.key === "Enter") fn(el.value); });
    };
    onEnter($("#epoch-input"), setEpoch);
    onEnter($("#neuron-input"), setNeuron);
    const head = $("#head-input");
    if (head) head.addEventListener("change", () => setHead(head.value));
    $$("[data-epoch-step]").forEach((b) => b.addEventListener("click", () => stepSnap(Number(b.dataset.epochStep))));
    $$("[data-neuron-step]").forEach((b) => b.addEventListener("click", () => setNeuron(st.neuron + Number(b.dataset.neuronStep))));
    const ev = $("#events-toggle");
    if (ev) ev.addEventListener("change", () => setEvents(ev.checked));
    const sm = $("#smooth-input");
    if (sm) {
      let queued = null;
      sm.addEventListener("input", () => {
        if (queued !== null) return;
        queued = requestAnimationFrame(() => { queued = null; setSmooth(sm.value); });
      });
    }
    const list = $("#event-kinds");
    page.eventKinds.forEach((k) => {
      // Built with DOM calls: kinds are user strings.
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.dataset.kind = k.kind;
      box.addEventListener("change", () => setKind(k.kind, box.checked));
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = ES.eventColor(k.kind);
      label.append(box, swatch, document.createTextNode(k.kind + " (" + k.count + ")"));
      if (k.hidden) label.title = "Hidden at first: " + k.count + " events";
      list.appendChild(label);
    });
    $("#sb-toggle").addEventListener("click", () => setSidebar(!st.sidebar));
    $$(".scale-btn").forEach((b) => b.addEventListener("click", () => toggleScale(b.dataset.chart, b.dataset.axis)));
    ES.ui.wireHelpAndLinks();
    const copyLink = $("#copy-link");
    if (copyLink) copyLink.addEventListener("click", () => { writeHashNow(); copy(location.href, "Link copied"); });
    const copyJson = $("#copy-json");
    if (copyJson) copyJson.addEventListener("click", () => copy(JSON.stringify(Object.assign({}, page.summary,
      { events: page.events.map((e) => ({ epoch: e.epoch, kind: e.kind, message: e.message, payload: e.detail })) }),
    null, 2), "Run summary copied as JSON"));
    const csv = $("#download-csv");
    if (csv) csv.addEventListener("click", downloadCsv);
    window.addEventListener("hashchange", () => apply(readHash()));
    // Arrow keys step through the analysed checkpoints (not while typing in a field).
    document.addEventListener("keydown", (e) => {
      if (e.altKey || e.ctrlKey || e.metaKey || (e.key !== "ArrowLeft" && e.key !== "ArrowRight")) return;
      if (e.target.closest && e.target.closest("input, select, textarea, [contenteditable]")) return;
      e.preventDefault();
      stepSnap(e.key === "ArrowLeft" ? -1 : 1);
    });
  }

  function writeHashNow() { clearTimeout(hashTimer); hashTimer = null; writeHash(); }

  function toast(text) { ES.ui.toast(text); }
  function copy(text, done) { ES.ui.copy(text, done, "Copying is blocked here; the text is in the console", true); }

  async function downloadCsv() {
    const cols = await Promise.all(page.series.map(async (s) => ({ name: s.name,
      x: (await store.load(s.x.$a)).data, y: (await store.load(s.y.$a)).data,
      digits: page.arrays[s.y.$a].enc === "f16" ? 4 : 7 })));
    const epochs = new Set();
    cols.forEach((c) => c.x.forEach((e) => epochs.add(e)));
    const all = Array.from(epochs).sort((a, b) => a - b);
    const quote = (s) => (/[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s);
    const lines = ["epoch," + cols.map((c) => quote(c.name)).join(",")];
    const pos = cols.map(() => 0);
    all.forEach((e) => {
      const cells = [String(e)];
      cols.forEach((c, j) => {
        let i = pos[j];
        while (i < c.x.length && c.x[i] < e) i++;
        pos[j] = i;
        const v = i < c.x.length && c.x[i] === e ? c.y[i] : NaN;
        cells.push(v === v ? String(Number(v.toPrecision(c.digits))) : "");
      });
      lines.push(cells.join(","));
    });
    const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = page.csvName;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 5000);
  }

  // ------------------------------------------------------------------ lazy rendering
  function observe() {
    ES.ui.observeCharts(charts, draw, preview);

    let ticking = false;
    window.addEventListener("scroll", () => {
      if (ticking) return;
      ticking = true;
      setTimeout(() => {
        ticking = false;
        const top = $$(".chart-card").find((c) => c.getBoundingClientRect().bottom > 80);
        const view = top && window.scrollY > 40 ? top.dataset.chart : "";
        if (view !== st.view) { st.view = view; writeHash(); }
      }, 250);
    }, { passive: true });
  }

  // Apply a (partial) state, e.g. from the hash; redraw what changed.
  function apply(s) {
    const keys = [];
    if (s.epoch !== undefined && snapEpoch(s.epoch) !== st.epoch) { st.epoch = snapEpoch(s.epoch); keys.push("epoch"); }
    if (s.neuron !== undefined && clampInt(s.neuron, page.limits.neuron || 1) !== st.neuron) { st.neuron = clampInt(s.neuron, page.limits.neuron || 1); keys.push("neuron"); }
    if (s.head !== undefined && clampInt(s.head, page.limits.head || 1) !== st.head) { st.head = clampInt(s.head, page.limits.head || 1); keys.push("head"); }
    if (s.input !== undefined && s.input !== st.input) { st.input = Math.max(-1, Math.round(s.input)); keys.push("input"); }
    ["logy", "logx"].forEach((k) => {
      if (s[k]) { st[k] = s[k]; Object.values(charts).forEach((ch) => { if (ch.visible && ch.status === "ok") draw(ch); else ch.dirty = true; }); }
    });
    if (s.hiddenKinds) st.hiddenKinds = s.hiddenKinds;
    if ((s.events !== undefined && s.events !== st.events) || s.hiddenKinds) setEvents(s.events !== undefined ? s.events : st.events);
    if (s.sidebar !== undefined && s.sidebar !== st.sidebar) setSidebar(s.sidebar);
    if (s.smooth !== undefined && s.smooth !== st.smooth) setSmooth(s.smooth);
    syncControls();
    return refresh(keys);
  }

  async function start() {
    snap = page.snap ? (await store.load(page.snap.$a)).data : new Int32Array(0);
    page.checkpointEpochs = page.checkpoints ? (await store.load(page.checkpoints.$a)).data : null;
    $("#ctl-neuron").hidden = !page.limits.neuron;
    $("#ctl-head").hidden = !page.limits.head;
    $("#ctl-epoch").hidden = !snap.length;
    $("#ctl-smooth").hidden = !Object.values(charts).some((c) => c.smooth);
    $("#ctl-events").hidden = !page.eventKinds.length;
    if (page.limits.neuron) $("#neuron-input").max = page.limits.neuron - 1;
    if (page.limits.head) $("#head-input").max = page.limits.head - 1;
    st.epoch = snapEpoch(page.defaults.epoch);
    const fromHash = readHash();
    if (fromHash.epoch !== undefined) st.epoch = snapEpoch(fromHash.epoch);
    if (fromHash.neuron !== undefined) st.neuron = clampInt(fromHash.neuron, page.limits.neuron || 1);
    if (fromHash.head !== undefined) st.head = clampInt(fromHash.head, page.limits.head || 1);
    if (fromHash.input !== undefined) st.input = Math.max(-1, Math.round(fromHash.input));
    else {
      // A chart may name the input to select first (the probe traces: their first input).
      const named = Object.values(page.charts).find((c) => c.spec && c.spec.defaultInput >= 0);
      if (named) st.input = named.spec.defaultInput;
    }
    if (fromHash.logy) st.logy = fromHash.logy;
    if (fromHash.logx) st.logx = fromHash.logx;
    if (fromHash.events !== undefined) st.events = fromHash.events;
    if (fromHash.hiddenKinds) st.hiddenKinds = fromHash.hiddenKinds;
    if (fromHash.sidebar === false) setSidebar(false);
    if (fromHash.smooth !== undefined) st.smooth = fromHash.smooth;
    wireControls();
    syncControls();
    // Kinds whose height is known from their spec reserve it before they draw (no layout jumps).
    Object.values(charts).forEach((ch) => {
      const kind = ES.kinds[ch.kind];
      const px = kind && kind.reserve && ch.status === "ok" ? kind.reserve(ch.raw, ch.el.clientWidth) : 0;
      if (px > 0) ch.el.style.minHeight = px + "px";
    });
    if (fromHash.view && document.getElementById("c-" + fromHash.view)) {
      st.view = fromHash.view;
      document.getElementById("c-" + fromHash.view).scrollIntoView({ block: "start" });
    }
    observe();
  }

  ES.app = { state: st, charts: charts, stats: stats, setEpoch: setEpoch, setNeuron: setNeuron,
    setHead: setHead, setInput: setInput, select: select, specOf: specOf, redraw: redraw, toggleScale: toggleScale, setEvents: setEvents, setKind: setKind,
    setSidebar: setSidebar, setSmooth: setSmooth,
    snap: () => snap, ready: null };
  ES.app.ready = start().catch((err) => console.error("epochscope: start failed:", err));
})(window.ES);
