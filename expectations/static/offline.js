/* regionstat: a tiny stand-in for the jQuery/Bootstrap/bootstrap-table calls GX Data Docs make, so the pages
   work from file:// without any CDN. Tabs, collapse, show/hide, and the index tables (rendered from the
   inline {columns, data} options). Everything else is a harmless no-op. */
(function () {
  "use strict";
  function Sel(nodes) { this.nodes = nodes.filter(Boolean); this.length = this.nodes.length; }
  function $(arg) {
    if (typeof arg === "function") {
      if (document.readyState !== "loading") { arg(); } else { document.addEventListener("DOMContentLoaded", arg); }
      return new Sel([]);
    }
    if (arg instanceof Sel) { return arg; }
    if (arg && (arg === document || arg === window || arg.nodeType === 1)) { return new Sel([arg]); }
    if (typeof arg === "string") {
      try { return new Sel(Array.prototype.slice.call(document.querySelectorAll(arg))); } catch (e) { return new Sel([]); }
    }
    return new Sel([]);
  }
  var P = Sel.prototype;
  P.each = function (fn) { this.nodes.forEach(function (n, i) { fn.call(n, i, n); }); return this; };
  P.ready = function (fn) { $(fn); return this; };
  P.on = function () { return this; };
  P.modal = function () { return this; };
  P.tooltip = P.popover = P.modal;
  P.addClass = function (c) { this.nodes.forEach(function (n) { n.classList && n.classList.add(c); }); return this; };
  P.removeClass = function (c) { this.nodes.forEach(function (n) { n.classList && n.classList.remove(c); }); return this; };
  P.show = P.fadeIn = function () { this.nodes.forEach(function (n) { n.style && (n.style.display = ""); }); return this; };
  P.hide = P.fadeOut = function () { this.nodes.forEach(function (n) { n.style && (n.style.display = "none"); }); return this; };
  P.parent = function () { return new Sel(this.nodes.map(function (n) { return n.parentElement; })); };
  P.data = function (k) { var n = this.nodes[0]; return n && n.getAttribute ? n.getAttribute("data-" + k) : undefined; };
  P.bootstrapTable = function (opts) {
    if (!opts || typeof opts !== "object" || !opts.columns) { return this; }
    var cols = opts.columns, rows = (opts.data || []).slice();
    if (opts.sortName) {
      var col = cols.filter(function (c) { return c.field === opts.sortName; })[0];
      var key = (col && col.sortName) || opts.sortName, dir = opts.sortOrder === "desc" ? -1 : 1;
      rows.sort(function (a, b) { var x = a[key], y = b[key]; return (x > y ? 1 : x < y ? -1 : 0) * dir; });
    }
    this.nodes.forEach(function (table) {
      table.classList.add("table", "table-hover");
      var html = "<thead><tr>" + cols.map(function (c) { return "<th>" + c.title + "</th>"; }).join("") + "</tr></thead><tbody>";
      rows.forEach(function (r, i) {
        html += '<tr class="clickable-row" data-row="' + i + '">' +
          cols.map(function (c) { return "<td>" + (r[c.field] === undefined ? "" : r[c.field]) + "</td>"; }).join("") + "</tr>";
      });
      table.innerHTML = html + "</tbody>";
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr) {
        var row = rows[+tr.getAttribute("data-row")];
        if (row && row._table_row_link_path) {
          tr.style.cursor = "pointer";
          tr.addEventListener("click", function (e) {
            if (e.target.closest && e.target.closest("a")) { return; }
            window.location = row._table_row_link_path;
          });
        }
      });
    });
    return this;
  };
  document.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target.closest('[data-toggle="tab"],[data-toggle="collapse"]') : null;
    if (!t) { return; }
    var sel = t.getAttribute("data-target") || t.getAttribute("href");
    var target = sel && sel.charAt(0) === "#" ? document.getElementById(sel.slice(1)) : null;
    if (!target) { return; }
    e.preventDefault();
    if (t.getAttribute("data-toggle") === "collapse") { target.classList.toggle("show"); return; }
    var nav = t.closest(".nav");
    if (nav) { Array.prototype.forEach.call(nav.querySelectorAll(".nav-link"), function (l) { l.classList.remove("active"); }); }
    t.classList.add("active");
    Array.prototype.forEach.call(target.parentElement.children, function (p) { p.classList.remove("active", "show"); });
    target.classList.add("active", "show");
  });
  window.$ = window.jQuery = $;
  window.vegaEmbed = function () { return Promise.resolve(); };
}());
