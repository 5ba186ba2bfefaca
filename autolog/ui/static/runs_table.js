/* autolog UI: the runs table's column chooser (show, pin, reorder; remembered per experiment in
   localStorage) and its expandable parent/child rows. Our own code, no libraries. */
"use strict";

(function () {
  function $$(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }

  function initChildren(table) {
    $$("button.expand", table).forEach(function (b) {
      b.addEventListener("click", function () {
        const open = b.getAttribute("aria-expanded") !== "true";
        b.setAttribute("aria-expanded", String(open));
        b.textContent = (open ? "▾ " : "▸ ") + b.textContent.slice(2);
        $$('tr.child-row[data-parent="' + b.dataset.run + '"]', table).forEach(function (tr) {
          tr.hidden = !open;
        });
      });
    });
  }

  function storageKey(key) { return "autolog.columns." + key; }

  function load(key) {
    try { return JSON.parse(localStorage.getItem(storageKey(key)) || "null"); } catch (e) { return null; }
  }

  function initColumns(table, chooser) {
    const head = $$("thead tr:last-child th[data-col]", table);
    const all = head.map(function (th) { return th.dataset.col; });
    const defaults = (table.dataset.defaultMetrics || "").split("\n").filter(Boolean);
    const defaultHidden = all.filter(function (c) {
      return c.startsWith("metrics.") && defaults.length && defaults.indexOf(c.slice(8)) < 0;
    });
    const saved = load(chooser.dataset.key);
    let state = saved || { order: all.slice(), hidden: defaultHidden, pinned: [] };
    // columns new since the state was saved go at the end, shown
    state.order = state.order.filter(function (c) { return all.indexOf(c) >= 0; })
      .concat(all.filter(function (c) { return state.order.indexOf(c) < 0; }));

    function save() { localStorage.setItem(storageKey(chooser.dataset.key), JSON.stringify(state)); }

    function sequence() {
      const pinned = state.order.filter(function (c) { return state.pinned.indexOf(c) >= 0; });
      return pinned.concat(state.order.filter(function (c) { return state.pinned.indexOf(c) < 0; }));
    }

    function apply() {
      const seq = sequence();
      $$("tr", table).forEach(function (tr) {
        const cells = {};
        $$(":scope > [data-col]", tr).forEach(function (td) { cells[td.dataset.col] = td; });
        seq.forEach(function (c) {
          const td = cells[c];
          if (!td) return;
          tr.appendChild(td);
          td.hidden = state.hidden.indexOf(c) >= 0;
          td.classList.toggle("pinned", state.pinned.indexOf(c) >= 0);
        });
      });
      const groups = table.querySelector("tr.groups");
      if (groups) groups.hidden = !!saved || state.hidden.length > 0;
      renderList(seq);
    }

    function control(li, label, title, fn) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "plain"; b.textContent = label; b.title = title;
      b.addEventListener("click", function () { fn(); save(); apply(); });
      li.appendChild(b);
    }

    function move(col, delta) {
      const i = state.order.indexOf(col), j = i + delta;
      if (j < 0 || j >= state.order.length) return;
      state.order.splice(i, 1);
      state.order.splice(j, 0, col);
    }

    function renderList(seq) {
      const ul = chooser.querySelector("#column-list");
      ul.textContent = "";
      seq.forEach(function (c) {
        const li = document.createElement("li");
        li.dataset.col = c;
        const box = document.createElement("input");
        box.type = "checkbox"; box.checked = state.hidden.indexOf(c) < 0;
        box.setAttribute("aria-label", "Show " + c);
        box.addEventListener("change", function () {
          state.hidden = state.hidden.filter(function (h) { return h !== c; });
          if (!box.checked) state.hidden.push(c);
          save(); apply();
        });
        li.appendChild(box);
        const name = document.createElement("span");
        name.textContent = c; li.appendChild(name);
        const pinned = state.pinned.indexOf(c) >= 0;
        control(li, pinned ? "Unpin" : "Pin", "Keep this column first", function () {
          state.pinned = pinned ? state.pinned.filter(function (p) { return p !== c; }) : state.pinned.concat([c]);
        });
        control(li, "↑", "Move left", function () { move(c, -1); });
        control(li, "↓", "Move right", function () { move(c, 1); });
        ul.appendChild(li);
      });
    }

    chooser.querySelector("#columns-reset").addEventListener("click", function () {
      localStorage.removeItem(storageKey(chooser.dataset.key));
      location.reload();
    });
    apply();
  }

  function init() {
    const table = document.getElementById("runs");
    const chooser = document.getElementById("column-chooser");
    if (!table) return;
    initChildren(table);
    if (chooser) initColumns(table, chooser);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
