// Sorting and filtering of the run table; grouping by sweep is kept when sorting by any other
// column (rows sort within their sweep).
//
// Built for 1,000+ runs within a frame or so per keystroke: laying out a table of every run
// costs about a second in chromium, so only the rows in view (and OVERSCAN more on each side)
// are in the table, between two spacer bodies as tall as the rows left out; the column widths
// are frozen once, at load (laid out from the rows with each column's longest texts), so they
// do not jump as rows come and go. Each row's lower-case text is read once; the order is
// computed only when the sort changes, with collators made once (not a localeCompare call
// per comparison).
(function () {
  "use strict";
  var OVERSCAN = 10;
  var runs = JSON.parse(document.getElementById("runs-data").textContent);
  var table = document.getElementById("runs");
  var tbody = document.getElementById("rows");
  var rows = Array.prototype.slice.call(tbody.querySelectorAll("tr[data-index]"));
  var index = rows.map(function (row) { return +row.getAttribute("data-index"); });
  var text = rows.map(function (row) { return row.textContent.toLowerCase(); });
  var headers = document.querySelectorAll("#runs th[data-key]");
  var filter = document.getElementById("filter");
  var count = document.getElementById("count");
  var empty = document.getElementById("empty");
  var byText = new Intl.Collator(undefined, {numeric: true});  // as localeCompare(.., {numeric: true})
  var bySweep = new Intl.Collator();                             // as plain localeCompare
  var sortKey = "sweep", sortDir = 1, query = null;
  var sorted = [], matches = [], from = -1, to = -1;

  // Freeze the columns, then keep only the rows in view. The widths are laid out from the
  // rows holding each column's longest texts (SAMPLE per column), not from all of them:
  // laying out every row once would cost as much as the page's load.
  var ths = table.tHead.rows[0].cells, SAMPLE = 3;
  var longest = [];
  Array.prototype.forEach.call(ths, function (th, c) {
    var lengths = rows.map(function (row, i) { return [row.cells[c] ? row.cells[c].textContent.length : 0, i]; });
    lengths.sort(function (a, b) { return b[0] - a[0] || a[1] - b[1]; });
    lengths.slice(0, SAMPLE).forEach(function (li) { if (longest.indexOf(li[1]) < 0) longest.push(li[1]); });
  });
  tbody.textContent = "";
  longest.sort(function (a, b) { return a - b; }).forEach(function (i) { tbody.appendChild(rows[i]); });
  var widths = Array.prototype.map.call(ths, function (th) { return th.getBoundingClientRect().width; });
  var rowHeight = rows.length ? rows[longest[0]].getBoundingClientRect().height : 0;
  // in px: with long names the table is wider than the page, as it would be with every row in it
  Array.prototype.forEach.call(ths, function (th, i) { th.style.width = widths[i] + "px"; });
  table.classList.add("windowed");
  function spacer() {
    var body = document.createElement("tbody");
    body.className = "spacer";
    body.setAttribute("aria-hidden", "true");
    body.insertRow().insertCell().colSpan = ths.length;
    return body;
  }
  var above = spacer(), below = spacer();
  table.insertBefore(above, tbody);
  table.insertBefore(below, tbody.nextSibling);

  function value(i, key) {
    var v = runs[index[i]][key];
    return v === null || v === undefined ? null : v;
  }
  // Row positions (into `rows`) in display order for the current sort.
  function order() {
    var n = rows.length, keys = new Array(n), sweeps = new Array(n), numeric = true, pos = [], i;
    for (i = 0; i < n; i++) {
      keys[i] = value(i, sortKey);
      sweeps[i] = String(value(i, "sweep"));
      if (keys[i] !== null && typeof keys[i] !== "number") numeric = false;
      pos.push(i);
    }
    return pos.sort(function (a, b) {
      if (sortKey !== "sweep") {
        var s = bySweep.compare(sweeps[a], sweeps[b]);
        if (s) return s;
      }
      var va = keys[a], vb = keys[b], c = 0;
      if (va !== vb) {
        if (va === null) c = 1;             // missing values last, whatever the direction
        else if (vb === null) c = -1;
        else if (numeric || (typeof va === "number" && typeof vb === "number")) c = (va - vb) * sortDir;
        else c = byText.compare(String(va), String(vb)) * sortDir;
      }
      return c || (index[a] - index[b]);
    });
  }
  // The rows in view: read the layout once, then write (no back-and-forth).
  function draw(changed) {
    var n = matches.length, step = rowHeight || 30;
    var top = above.getBoundingClientRect().top;
    var span = Math.ceil(window.innerHeight / step) + 2 * OVERSCAN;
    var first = Math.max(0, Math.min(Math.floor(-top / step) - OVERSCAN, n - span));
    var last = Math.min(n, first + span);
    if (!changed && first === from && last === to) return;
    from = first;
    to = last;
    var frag = document.createDocumentFragment();
    for (var i = first; i < last; i++) frag.appendChild(rows[matches[i]]);
    tbody.textContent = "";
    tbody.appendChild(frag);
    above.rows[0].cells[0].style.height = (first * step) + "px";
    below.rows[0].cells[0].style.height = ((n - last) * step) + "px";
  }
  function select() {
    var q = filter.value.trim().toLowerCase();
    matches = q ? sorted.filter(function (i) { return text[i].indexOf(q) >= 0; }) : sorted.slice();
    query = q;
    count.textContent = matches.length === rows.length ? rows.length : matches.length + " of " + rows.length;
    empty.hidden = matches.length > 0;
    draw(true);
    var state = "sort=" + encodeURIComponent(sortKey) + "&dir=" + sortDir + (q ? "&q=" + encodeURIComponent(q) : "");
    if (location.hash.slice(1) !== state) history.replaceState(null, "", "#" + state);
  }
  function sort() {
    sorted = order();
    headers.forEach(function (th) {
      th.setAttribute("aria-sort", th.getAttribute("data-key") === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
    });
    select();
  }
  headers.forEach(function (th) {
    th.addEventListener("click", function () {
      var key = th.getAttribute("data-key");
      sortDir = key === sortKey ? -sortDir : 1;
      sortKey = key;
      sort();
    });
  });
  filter.addEventListener("input", function () {
    if (filter.value.trim().toLowerCase() !== query) select();  // not for e.g. a trailing space
  });
  var pending = false;
  function later() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; draw(false); });
  }
  window.addEventListener("scroll", later, {passive: true});
  window.addEventListener("resize", later);
  // The URL hash keeps sort and filter, so a link reopens the same view.
  location.hash.slice(1).split("&").forEach(function (kv) {
    var p = kv.split("="), v = decodeURIComponent(p[1] || "");
    if (p[0] === "sort") sortKey = v;
    if (p[0] === "dir") sortDir = v === "-1" ? -1 : 1;
    if (p[0] === "q") filter.value = v;
  });
  sort();
  // For tests and scripts: the data index of every matching run, in display order.
  window.ES = window.ES || {};
  window.ES.index = {shown: function () { return matches.map(function (i) { return index[i]; }); }};
})();
