/* autolog UI: the run page's chart controls (x axis: step, wall time or time since the first
   point; smoothing; several metrics on one chart). Our own code, no libraries. */
"use strict";

(function () {
  function init() {
    const U = window.autologUI, controls = document.getElementById("chart-controls");
    if (!U || !controls) return;
    const redrawAll = function () {
      U.$$(".chart.drawn").forEach(function (el) { if (el.redraw) el.redraw(); });
    };
    const axis = document.getElementById("x-axis");
    axis.addEventListener("change", function () { U.chartSettings.x = axis.value; redrawAll(); });
    const smoothing = document.getElementById("smoothing"), shown = document.getElementById("smoothing-value");
    smoothing.addEventListener("input", function () {
      U.chartSettings.smoothing = Number(smoothing.value);
      shown.textContent = smoothing.value;
      redrawAll();
    });
    const button = document.getElementById("plot-together"), box = document.getElementById("together-box");
    const checked = function () { return U.$$("input.together:checked").map(function (c) { return c.value; }); };
    U.$$("input.together").forEach(function (c) {
      c.addEventListener("change", function () { button.disabled = checked().length < 2; });
    });
    button.addEventListener("click", function () {
      const keys = checked(), runId = U.pageData().run_id, el = document.getElementById("together-chart");
      box.hidden = false;
      box.querySelector("figcaption").firstChild.textContent = keys.join(", ");
      el.zoom = null;
      U.drawHistories(el, keys.map(function (k, i) {
        return { run_id: runId, key: k, name: k, color: U.COLORS[i % U.COLORS.length] };
      }), keys[0]);
      box.scrollIntoView({ block: "nearest" });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
