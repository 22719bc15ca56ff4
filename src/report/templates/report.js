// netmon report: hover details for the charts and sorting for the table. Everything is drawn
// without this script; it only adds. Names are set with textContent, never parsed as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("netmon-data").textContent);
  var tip = document.getElementById("tip");

  // Decimal units, three significant digits: the same as netmon's tables.
  var PREFIXES = ["", "k", "M", "G", "T", "P", "E"];
  function bytes(n) {
    if (n < 999.5) return Math.round(n) + " B";
    var x = n, i = 0;
    while (x >= 999.5 && i + 1 < PREFIXES.length) { x /= 1000; i++; }
    var t = x < 9.995 ? x.toFixed(2) : x < 99.95 ? x.toFixed(1) : x.toFixed(0);
    return t + " " + PREFIXES[i] + "B";
  }
  function exact(n) { return n.toLocaleString("en-US") + " bytes"; }
  function percent(f) {
    if (f >= 1) return "100%";
    if (f <= 0) return "0%";
    var p = f * 100;
    return p >= 99.95 ? "99.9%" : p < 0.05 ? "<0.1%" : p.toFixed(1) + "%";
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function row(table, name, value, cls, swatch) {
    var tr = el("tr", undefined, cls);
    var td = el("td");
    if (swatch) { var s = el("i", undefined, "sw " + swatch); td.appendChild(s); td.appendChild(document.createTextNode(" ")); }
    td.appendChild(document.createTextNode(name));
    tr.appendChild(td);
    tr.appendChild(el("td", value));
    table.appendChild(tr);
  }
  function place(ev) {
    var pad = 14, w = tip.offsetWidth, h = tip.offsetHeight;
    var x = ev.clientX + pad, y = ev.clientY + pad;
    if (x + w > window.innerWidth - 4) x = Math.max(4, ev.clientX - pad - w);
    if (y + h > window.innerHeight - 4) y = Math.max(4, ev.clientY - pad - h);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  function show(ev, title, fill) {
    tip.textContent = "";
    tip.appendChild(el("b", title));
    var t = el("table");
    fill(t);
    tip.appendChild(t);
    tip.hidden = false;
    place(ev);
  }
  function hide() { tip.hidden = true; }

  var classes = data.timeline.series.map(function (_, i) {
    return data.timeline.other && i === data.timeline.series.length - 1 ? "so" : "s" + i;
  });
  var fillers = {
    timeline: function (t, i) {
      var b = data.timeline.buckets[i];
      for (var k = data.timeline.series.length - 1; k >= 0; k--) {
        var v = b.series[k][0] + b.series[k][1];
        if (v > 0) row(t, data.timeline.series[k], bytes(v), "", classes[k]);
      }
      row(t, "Total", bytes(b.bytes_total), "sum");
      row(t, "received / sent", bytes(b.bytes_in) + " / " + bytes(b.bytes_out));
      row(t, "exact", exact(b.bytes_total));
      row(t, "recorded", percent(b.coverage));
    },
    days: function (t, i) {
      var d = data.days[i];
      row(t, "received", bytes(d.bytes_in), "", "rx");
      row(t, "sent", bytes(d.bytes_out), "", "tx");
      row(t, "Total", bytes(d.bytes_total), "sum");
      row(t, "exact", exact(d.bytes_total));
      row(t, "recorded", percent(d.coverage));
    }
  };
  Array.prototype.forEach.call(document.querySelectorAll(".hits"), function (g) {
    var fill = fillers[g.getAttribute("data-chart")];
    var on = null;
    g.addEventListener("pointermove", function (ev) {
      var r = ev.target;
      if (!r.hasAttribute("data-i")) return;
      if (on !== r) {
        if (on) on.classList.remove("on");
        on = r;
        r.classList.add("on");
        var i = +r.getAttribute("data-i");
        show(ev, r.getAttribute("data-label"), function (t) { fill(t, i); });
      } else {
        place(ev);
      }
    });
    g.addEventListener("pointerleave", function () {
      if (on) on.classList.remove("on");
      on = null;
      hide();
    });
  });

  var heat = document.getElementById("hm-svg");
  if (heat) {
    var x0 = +heat.getAttribute("data-x0"), y0 = +heat.getAttribute("data-y0");
    var cw = +heat.getAttribute("data-cw"), ch = +heat.getAttribute("data-ch");
    var last = "";
    heat.addEventListener("pointermove", function (ev) {
      var m = heat.getScreenCTM();
      if (!m) return;
      var p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(m.inverse());
      var c = Math.floor((p.x - x0) / cw), r = Math.floor((p.y - y0) / ch);
      var rowData = data.heatmap.rows[r];
      if (c < 0 || c > 23 || !rowData) { last = ""; hide(); return; }
      var key = r + ":" + c;
      if (key === last) { place(ev); return; }
      last = key;
      var hh = (c < 10 ? "0" : "") + c, nh = (c + 1 < 10 ? "0" : "") + (c + 1);
      var v = rowData.cells[c];
      show(ev, rowData.label + ", " + hh + ":00–" + nh + ":00", function (t) {
        if (v === null) row(t, rowData.daily_only ? "only the daily total is kept" : "not recorded", "");
        else { row(t, "Total", bytes(v), "sum"); row(t, "exact", exact(v)); }
      });
    });
    heat.addEventListener("pointerleave", function () { last = ""; hide(); });
  }

  // The table of every application: sorted by the embedded data (numbers largest first on
  // the first click, names A to Z), and exact figures as tooltips.
  var table = document.getElementById("apps-table");
  if (table) {
    var heads = table.querySelectorAll("thead th");
    var keys = Array.prototype.map.call(heads, function (th) {
      var b = th.querySelector("button");
      return b ? b.getAttribute("data-key") : null;
    });
    var app = function (tr) { return data.apps[+tr.getAttribute("data-i")]; };
    Array.prototype.forEach.call(heads, function (th, col) {
      var button = th.querySelector("button");
      if (!button) return;
      button.addEventListener("click", function () {
        var k = keys[col], byName = k === "app";
        var now = th.getAttribute("aria-sort");
        var dir = now === "none" ? (byName ? "ascending" : "descending")
          : now === "ascending" ? "descending" : "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var key = function (tr) {
          var v = app(tr)[k];
          return byName ? String(v).toLowerCase() : typeof v === "string" ? Date.parse(v) : v;
        };
        rows.sort(function (a, b) {
          var ka = key(a), kb = key(b);
          var o = ka < kb ? -1 : ka > kb ? 1 : 0;
          return dir === "ascending" ? o : -o;
        });
        rows.forEach(function (tr) { body.appendChild(tr); });
      });
    });
    table.tBodies[0].addEventListener("pointerover", function (ev) {
      var cell = ev.target.closest("td, th");
      var tr = cell && cell.parentNode;
      if (!tr || !tr.hasAttribute("data-i") || cell.hasAttribute("title")) return;
      var a = app(tr), k = keys[cell.cellIndex];
      if (k === "app") cell.title = a.path || a.app;
      else if (typeof a[k] === "number" && k !== "share") cell.title = exact(a[k]);
      else if (k === "first_seen" || k === "last_seen") cell.title = a[k];
    });
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
