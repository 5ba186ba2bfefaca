/* autolog UI: the runs list's chart view (a metric across the page's runs, as bars or against a
   parameter), the Restore buttons of deleted runs (their list and their pages) and the count
   of a filtered search. Our own code, no libraries. */
"use strict";

(function () {
  const LOWER_IS_BETTER = /loss|error|rmse|mae|mse|logloss|deviance/i;

  function axisOf(values) {  // numeric (log when positive and spanning decades) or categorical
    const nums = values.map(function (v) { return typeof v === "number" ? v : Number(v); });
    if (values.length && nums.every(isFinite)) {
      let lo = Math.min.apply(null, nums), hi = Math.max.apply(null, nums);
      const log = lo > 0 && hi / lo >= 100;
      if (lo === hi) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
      const f = log ? Math.log10 : function (v) { return v; };
      return { numeric: true, log: log, pos: function (v) { return (f(Number(v)) - f(lo)) / (f(hi) - f(lo)); },
               ticks: (log ? autologUI.logTicks(lo, hi) : autologUI.niceTicks(lo, hi, 5)) };
    }
    const cats = Array.from(new Set(values.map(String))).sort();
    return { numeric: false, cats: cats,
             pos: function (v) { return cats.length === 1 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1); } };
  }

  function runLink(parent, run) {
    const a = autologUI.svg("a", { href: "/runs/" + encodeURIComponent(run.run_id) }, parent);
    return a;
  }

  function barChart(el, runs, metric) {
    const U = autologUI;
    const rows = runs.filter(function (r) { return isFinite(U.toNumber(r.metrics[metric])); });
    const low = LOWER_IS_BETTER.test(metric);
    rows.sort(function (a, b) {
      const d = U.toNumber(a.metrics[metric]) - U.toNumber(b.metrics[metric]);
      return low ? d : -d;
    });
    const W = Math.max(420, el.clientWidth), R = 20, M = { left: 190, right: 70, top: 8, bottom: 24 };
    const H = M.top + M.bottom + rows.length * R;
    const vals = rows.map(function (r) { return U.toNumber(r.metrics[metric]); });
    const lo = Math.min(0, Math.min.apply(null, vals)), hi = Math.max(0, Math.max.apply(null, vals)) || 1;
    const pw = W - M.left - M.right;
    const sx = function (v) { return M.left + (v - lo) / (hi - lo) * pw; };
    const root = U.svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": metric + " by run" }, el);
    const axis = U.svg("g", { class: "axis" }, root);
    U.niceTicks(lo, hi, 5).forEach(function (t) {
      U.svg("line", { class: "grid-line", x1: sx(t), x2: sx(t), y1: M.top, y2: H - M.bottom }, axis);
      U.svg("text", { x: sx(t), y: H - 8, "text-anchor": "middle" }, axis).textContent = U.fmtTick(t);
    });
    rows.forEach(function (r, i) {
      const v = vals[i], y = M.top + i * R;
      const a = runLink(root, r);
      const label = U.svg("text", { class: "bar-label", x: M.left - 6, y: y + R * 0.7, "text-anchor": "end" }, a);
      label.textContent = r.name.length > 28 ? r.name.slice(0, 27) + "…" : r.name;
      const x0 = sx(Math.min(0, v)), x1 = sx(Math.max(0, v));
      const bar = U.svg("rect", { class: "bar", x: x0, y: y + 3, width: Math.max(1, x1 - x0), height: R - 6,
                                  "data-run": r.run_id, fill: U.COLORS[0] }, a);
      U.svg("title", {}, bar).textContent = r.name + ": " + metric + " = " + U.fmt(v);
      U.svg("text", { class: "bar-value", x: x1 + 4, y: y + R * 0.7 }, root).textContent = U.fmt(v);
    });
    return rows.length;
  }

  /* `colorOf(run)` colours the dots (one colour by default). */
  function scatter(el, runs, metric, param, colorOf) {
    const U = autologUI;
    const pts = runs.filter(function (r) { return isFinite(U.toNumber(r.metrics[metric])) && param in r.params; });
    if (!pts.length) return 0;
    const W = Math.max(420, el.clientWidth), H = 320, M = { left: 60, right: 20, top: 12, bottom: 40 };
    const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
    const xa = axisOf(pts.map(function (r) { return r.params[param]; }));
    const ya = axisOf(pts.map(function (r) { return U.toNumber(r.metrics[metric]); }));
    const sx = function (v) { return M.left + 10 + xa.pos(v) * (pw - 20); };
    const sy = function (v) { return M.top + ph - ya.pos(v) * ph; };
    const root = U.svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": metric + " against " + param }, el);
    const axis = U.svg("g", { class: "axis" }, root);
    (xa.numeric ? xa.ticks : xa.cats).forEach(function (t) {
      U.svg("text", { class: "x-tick", x: sx(t), y: M.top + ph + 16, "text-anchor": "middle" }, axis).textContent =
        xa.numeric ? U.fmtTick(t) : t;
    });
    ya.ticks.forEach(function (t) {
      U.svg("line", { class: "grid-line", x1: M.left, x2: M.left + pw, y1: sy(t), y2: sy(t) }, axis);
      U.svg("text", { x: M.left - 6, y: sy(t) + 3.5, "text-anchor": "end" }, axis).textContent = U.fmtTick(t);
    });
    U.svg("text", { x: M.left + pw, y: H - 4, "text-anchor": "end" }, axis).textContent = param + (xa.log ? " (log)" : "");
    pts.forEach(function (r) {
      const v = U.toNumber(r.metrics[metric]);
      const dot = U.svg("circle", { class: "pt", cx: sx(r.params[param]), cy: sy(v), r: 4.5,
                                    fill: colorOf ? colorOf(r) : U.COLORS[0], "data-run": r.run_id }, runLink(root, r));
      U.svg("title", {}, dot).textContent = r.name + ": " + param + " = " + r.params[param] + ", " + metric + " = " + U.fmt(v);
    });
    return pts.length;
  }

  function initChart() {
    const U = window.autologUI, el = document.getElementById("runs-chart-plot");
    const metric = document.getElementById("chart-metric");
    if (!U || !el || !metric) return;
    const kind = document.getElementById("chart-kind"), param = document.getElementById("chart-param");
    const runs = U.pageData().chart_runs || [];
    const draw = function () {
      el.textContent = "";
      const scatterView = kind.value === "scatter";
      document.getElementById("chart-param-label").hidden = !scatterView;
      const n = scatterView && param.value ? scatter(el, runs, metric.value, param.value) : barChart(el, runs, metric.value);
      const what = scatterView ? " with " + metric.value + " and " + param.value : " with " + metric.value;
      U.html("p", { class: "muted", id: "runs-chart-count" }, el, n + " of " + runs.length + " runs on this page" + what + ".");
    };
    [metric, kind, param].forEach(function (s) { if (s) s.addEventListener("change", draw); });
    draw();
  }

  function initRestore() {
    document.querySelectorAll("button.restore").forEach(function (b) {
      b.addEventListener("click", function () {
        b.disabled = true;
        fetch("/api/runs/" + encodeURIComponent(b.dataset.run) + "/restore",
              { method: "POST", headers: { "X-Autolog-UI": "1", Accept: "application/json" } })
          .then(function (r) {
            return r.json().then(function (body) {
              if (!r.ok) throw new Error(body.message || r.statusText);
              b.textContent = "Restored";
              const row = b.closest("tr");
              if (row) row.classList.add("restored");
            });
          }).catch(function (e) { b.disabled = false; b.textContent = "Restore failed: " + e.message; });
      });
    });
  }

  /* A filtered search's page comes before its count: ask for it now and fill it in. */
  function initCount() {
    const span = document.getElementById("run-total");
    if (!span || !window.autologUI) return;
    window.autologUI.getJSON(span.dataset.url).then(function (body) {
      const pages = Math.max(1, Math.ceil(body.total / Number(span.dataset.perPage)));
      span.textContent = body.total;
      span.removeAttribute("title");
      document.getElementById("page-total").textContent = pages;
      document.getElementById("jump-page").max = pages;
      const last = document.getElementById("last-page"), url = new URL(last.href);
      url.searchParams.set("page", pages);
      last.href = url.pathname + url.search;
      last.hidden = false;
    }).catch(function (e) { span.textContent = "(count failed: " + e.message + ")"; });
  }

  function init() { initChart(); initRestore(); initCount(); }

  if (window.autologUI) { window.autologUI.scatter = scatter; window.autologUI.axisOf = axisOf; }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
