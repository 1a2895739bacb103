// UI helpers shared by the run report and the comparison page: a transient toast message
// and copy-to-clipboard with a fallback for file:// pages (no secure context there).
window.ES = window.ES || {};
(function (ES) {
  "use strict";
  function toast(text) {
    const t = document.querySelector("#toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 1800);
  }

  // `blocked`: what to tell the user when the browser refuses; `logOnFail`: also print the text.
  function copy(text, done, blocked, logOnFail) {
    const fallback = () => {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed"; area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      area.remove();
      toast(ok ? done : blocked);
      if (!ok && logOnFail) console.log(text);
    };
    ES.lastCopied = text;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => toast(done), fallback);
    } else fallback();
  }

  // Lazy rendering: charts coming near the viewport get their first drawing (those already in
  // view first, then top to bottom), one at a time with a frame between them so the first is
  // on screen before the next starts; each gets its `preview` at once, while plotly.js is not
  // running yet. A visible chart marked `dirty` is redrawn with `draw`; off-screen charts are
  // never redrawn (they stay dirty until they scroll into view).
  function observeCharts(charts, draw, preview) {
    let first = Promise.resolve();
    const nextFrame = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
    const queue = (ch) => {
      ch.queued = true;
      preview(ch);
      first = first.then(() => (ch.card.dataset.drawn ? null : draw(ch))).then(nextFrame);
    };
    const ahead = new IntersectionObserver((entries) => {
      const fresh = entries.filter((en) => en.isIntersecting).map((en) => charts[en.target.dataset.chart])
        .filter((ch) => ch && !ch.queued && !ch.card.dataset.drawn);
      const top = (ch) => ch.card.getBoundingClientRect().top;
      const shown = (ch) => top(ch) < window.innerHeight && ch.card.getBoundingClientRect().bottom > 0;
      fresh.sort((a, b) => (shown(b) - shown(a)) || (top(a) - top(b))).forEach(queue);
    }, { rootMargin: "300px 0px" });
    const inView = new IntersectionObserver((entries) => {
      entries.forEach((en) => {
        const ch = charts[en.target.dataset.chart];
        if (!ch) return;
        ch.visible = en.isIntersecting;
        if (ch.visible && ch.dirty && ch.card.dataset.drawn) draw(ch);
      });
    });
    Object.values(charts).forEach((ch) => {
      if (ch.status !== "ok") return;
      ahead.observe(ch.card);
      inView.observe(ch.card);
    });
  }

  // Every "?" button opens and closes its help text; in-page links scroll smoothly.
  function wireHelpAndLinks() {
    document.querySelectorAll(".help-btn").forEach((b) => b.addEventListener("click", () => {
      const body = document.getElementById(b.getAttribute("aria-controls"));
      body.hidden = !body.hidden;
      b.setAttribute("aria-expanded", String(!body.hidden));
    }));
    document.querySelectorAll("[data-goto]").forEach((a) => a.addEventListener("click", (e) => {
      e.preventDefault();
      const target = document.getElementById(a.dataset.goto);
      if (target) target.scrollIntoView({ behavior: "smooth", block: "start" });
    }));
  }

  ES.ui = { toast, copy, observeCharts, wireHelpAndLinks };
})(window.ES);
