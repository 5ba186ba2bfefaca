/* autolog UI: the compare page's parallel coordinates (lines coloured by the chosen metric, log
   axes for parameters spanning decades) and its scatter of one param against one metric.
   Our own code, no libraries. */
"use strict";

(function () {
  // a colour-blind-safe sequential scale (viridis), low values dark
  const SCALE = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const MAX_AXES = 8;

  function colorAt(t) {
    t = Math.max(0, Math.min(1, isFinite(t) ? t : 0.5)) * (SCALE.length - 1);
    const i = Math.min(SCALE.length - 2, Math.floor(t)), f = t - i;
    const c = SCALE[i].map(function (v, k) { return Math.round(v + (SCALE[i + 1][k] - v) * f); });
    return "rgb(" + c.join(", ") + ")";
  }

  function makeAxis(name, values, isMetric) {
    const U = window.autologUI;
    const present = values.filter(function (v) { return v !== null && v !== undefined; });
    const nums = present.map(function (v) { return typeof v === "number" ? v : (String(v).trim() === "" ? NaN : Number(v)); });
    const axis = { name: name, numeric: isMetric || (present.length > 0 && nums.every(isFinite)) };
    if (axis.numeric) {
      const fin = nums.filter(isFinite);
      let lo = fin.length ? Math.min.apply(null, fin) : 0, hi = fin.length ? Math.max.apply(null, fin) : 1;
      axis.log = !isMetric && lo > 0 && hi / lo >= 100;
      if (lo === hi) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
      const f = axis.log ? Math.log10 : function (v) { return v; };
      axis.pos = function (v) {
        if (v === null || v === undefined || v === "") return null;
        const n = typeof v === "number" ? v : Number(v);
        return isFinite(n) ? (f(n) - f(lo)) / (f(hi) - f(lo)) : null;
      };
      const ticks = axis.log ? U.logTicks(lo, hi) : U.niceTicks(lo, hi, 4);
      axis.ticks = ticks.map(function (t) { return [axis.pos(t), U.fmt(t), U.fmt(t)]; });
    } else {
      const cats = Array.from(new Set(values.map(function (v) { return v === null || v === undefined ? "(none)" : String(v); }))).sort();
      const at = function (c) { return cats.length === 1 ? 0.5 : cats.indexOf(c) / (cats.length - 1); };
      axis.pos = function (v) { return at(v === null || v === undefined ? "(none)" : String(v)); };
      // whole words up to 24 characters on the plot, the full value on hover
      axis.ticks = cats.map(function (c) { return [at(c), c.length > 24 ? c.slice(0, 23) + "…" : c, c]; });
    }
    return axis;
  }

  /* The params worth an axis: those that differ between the runs, the ones every run has first. */
  function axisParams(runs, candidates) {
    const scored = candidates.map(function (k) {
      const vals = runs.map(function (r) { return k in r.params ? String(r.params[k]) : null; });
      const present = vals.filter(function (v) { return v !== null; }).length;
      return { k: k, present: present, keep: present > 0 && (new Set(vals).size > 1 || runs.length === 1) };
    }).filter(function (x) { return x.keep; });
    scored.sort(function (a, b) { return b.present - a.present || (a.k < b.k ? -1 : 1); });
    return scored.slice(0, MAX_AXES).map(function (x) { return x.k; })
      .sort(function (a, b) { return candidates.indexOf(a) - candidates.indexOf(b); });
  }

  function drawAxis(root, a, x, yOf, i, top) {
    const U = window.autologUI;
    const g = U.svg("g", { class: "axis" + (a.log ? " log" : ""), "data-axis": a.name }, root);
    U.svg("line", { class: "axis-line", x1: x, x2: x, y1: yOf(1), y2: yOf(0) }, g);
    // titles alternate between two rows, so long names are shown whole, never cut mid-word
    const title = U.svg("text", { class: "axis-title", x: x, y: top - (i % 2 ? 8 : 24), "text-anchor": "middle" }, g);
    title.textContent = a.name + (a.log ? " (log)" : "");
    a.ticks.forEach(function (t) {
      const y = yOf(t[0]);
      U.svg("line", { class: "axis-line", x1: x - 3, x2: x, y1: y, y2: y }, g);
      const label = U.svg("text", { class: "tick", x: x - 6, y: y + 3.5, "text-anchor": "end" }, g);
      label.textContent = t[1];
      if (t[1] !== t[2]) U.svg("title", {}, label).textContent = t[2];
    });
  }

  function parallelPlot(el, runs, candidates, metric) {
    const U = window.autologUI;
    el.textContent = "";
    const usable = runs.filter(function (r) { return isFinite(U.toNumber(r.metrics[metric])); });
    if (!usable.length) { U.html("p", { class: "empty" }, el, "No run has a finite value of " + metric + "."); return; }
    const paramKeys = axisParams(usable, candidates);
    if (!paramKeys.length) { U.html("p", { class: "empty" }, el, "These runs have no parameters to plot against " + metric + "."); return; }
    const axes = paramKeys.map(function (k) {
      return makeAxis(k, usable.map(function (r) { return k in r.params ? r.params[k] : null; }), false);
    });
    const mvals = usable.map(function (r) { return U.toNumber(r.metrics[metric]); });
    const maxis = makeAxis(metric, mvals, true);
    axes.push(maxis);
    const W = Math.max(360, el.clientWidth), H = 360, M = { left: 110, right: 90, top: 52, bottom: 22 };
    const ph = H - M.top - M.bottom, gap = (W - M.left - M.right) / Math.max(1, axes.length - 1);
    const root = U.svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "parallel coordinates" }, el);
    const xs = axes.map(function (a, i) { return M.left + i * gap; });
    const yOf = function (p) { return M.top + ph - p * ph; };
    const lines = U.svg("g", {}, root);
    const lo = Math.min.apply(null, mvals), hi = Math.max.apply(null, mvals);
    usable.forEach(function (r, j) {
      const mv = mvals[j];
      let d = "", pen = false;
      axes.forEach(function (a, i) {
        const p = a.pos(i === axes.length - 1 ? mv : (a.name in r.params ? r.params[a.name] : null));
        if (p === null) { pen = false; return; }
        d += (pen ? "L" : "M") + xs[i].toFixed(1) + " " + yOf(p).toFixed(1); pen = true;
      });
      const color = colorAt(hi > lo ? (mv - lo) / (hi - lo) : 0.5);
      const path = U.svg("path", { class: "pc-line", d: d, stroke: color, "data-run": r.run_id, "data-value": mv }, lines);
      U.svg("title", {}, path).textContent = r.name + ": " + metric + " = " + U.fmt(mv);
    });
    axes.forEach(function (a, i) { drawAxis(root, a, xs[i], yOf, i, M.top); });
    colorBar(el, metric, lo, hi);
    const skipped = runs.length - usable.length;
    if (skipped) U.html("p", { class: "muted" }, el, skipped + " run(s) without a finite " + metric + " are not shown.");
  }

  function colorBar(el, metric, lo, hi) {
    const U = window.autologUI;
    const bar = U.html("div", { class: "color-bar", id: "pc-color-bar" }, el);
    U.html("span", { class: "lo" }, bar, U.fmt(lo));
    const ramp = U.html("span", { class: "ramp" }, bar);
    ramp.style.background = "linear-gradient(to right, " + [0, 0.25, 0.5, 0.75, 1].map(colorAt).join(", ") + ")";
    U.html("span", { class: "hi" }, bar, U.fmt(hi));
    U.html("span", { class: "muted" }, bar, "line colour: " + metric);
  }

  function init() {
    const U = window.autologUI;
    const plot = document.getElementById("parallel-plot");
    if (!U || !plot) return;
    const data = U.pageData(), select = document.getElementById("pc-metric");
    const drawPlot = function () {
      if (select) parallelPlot(plot, data.runs, data.params, select.value);
      else U.html("p", { class: "empty" }, plot, "No metrics to plot.");
    };
    if (select) select.addEventListener("change", drawPlot);
    const sp = document.getElementById("scatter-param"), sm = document.getElementById("scatter-metric");
    const out = document.getElementById("scatter-plot");
    const colors = {};
    data.runs.forEach(function (r) { colors[r.run_id] = r.color; });
    const drawScatter = function () {
      if (!sp || !sm || !out) return;
      out.textContent = "";
      const n = U.scatter(out, data.runs, sm.value, sp.value, function (r) { return colors[r.run_id]; });
      if (!n) U.html("p", { class: "empty" }, out, "No run has both " + sp.value + " and " + sm.value + ".");
    };
    [sp, sm].forEach(function (s) { if (s) s.addEventListener("change", drawScatter); });
    drawPlot();
    drawScatter();
    window.addEventListener("resize", U.debounce(function () { drawPlot(); drawScatter(); }, 200));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
