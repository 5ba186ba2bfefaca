/* autolog UI: charts (SVG), artifact previews and small table helpers. Our own code, no libraries. */
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed",
                  "#0891b2", "#db2777", "#4d7c0f", "#9a3412", "#475569"];

  // -- helpers ------------------------------------------------------------------------

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }

  function svg(tag, attrs, parent) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const k in attrs || {}) el.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(el);
    return el;
  }

  function html(tag, attrs, parent, text) {
    const el = document.createElement(tag);
    for (const k in attrs || {}) el.setAttribute(k, attrs[k]);
    if (text !== undefined) el.textContent = text;
    if (parent) parent.appendChild(el);
    return el;
  }

  function pageData() {
    const el = $("#page-data");
    return el ? JSON.parse(el.textContent) : {};
  }

  // The API sends non-finite values as "NaN", "Infinity", "-Infinity".
  function toNumber(v) {
    if (typeof v === "number") return v;
    if (v === "Infinity") return Infinity;
    if (v === "-Infinity") return -Infinity;
    return NaN;
  }

  function fmt(v) {
    if (typeof v !== "number") return String(v);
    if (!isFinite(v)) return isNaN(v) ? "NaN" : (v > 0 ? "inf" : "-inf");
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3).replace(/\.?0+e/, "e");
    return String(parseFloat(v.toPrecision(5)));
  }

  function fmtInt(n) { return n.toLocaleString("en-US"); }

  function fmtTick(v) {  // axis labels: 25k, 1.5M for big round numbers
    const a = Math.abs(v);
    if (a >= 1e4 && a < 1e9) {
      const [div, unit] = a >= 1e6 ? [1e6, "M"] : [1e3, "k"];
      return parseFloat((v / div).toPrecision(4)) + unit;
    }
    return fmt(v);
  }

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
      out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    }
    return out;
  }

  function logTicks(lo, hi) {
    const out = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      const t = Math.pow(10, e);
      if (t >= lo && t <= hi) out.push(t);
    }
    return out.length >= 2 ? out : [lo, hi];
  }

  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.message || r.statusText);
        return body;
      });
    });
  }

  function bisect(xs, x) {  // index of the value in sorted xs nearest to x
    let lo = 0, hi = xs.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] < x) lo = mid; else hi = mid;
    }
    return Math.abs(xs[lo] - x) <= Math.abs(xs[hi] - x) ? lo : hi;
  }

  // -- line chart -----------------------------------------------------------------------

  /* series: [{name, color, steps: [...], values: [...]}]; draws into el (an SVG per call). */
  function lineChart(el, series, options) {
    options = options || {};
    el.textContent = "";
    const W = Math.max(200, el.clientWidth), H = Math.max(120, el.clientHeight);
    const M = { left: 58, right: 14, top: 10, bottom: 26 };
    const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
    let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
    const logY = !!options.logY;
    series.forEach(function (s) {
      s.ys = s.values.map(toNumber);
      s.steps.forEach(function (x, i) {
        const y = s.ys[i];
        if (!isFinite(y) || (logY && y <= 0)) return;
        if (x < xmin) xmin = x; if (x > xmax) xmax = x;
        if (y < ymin) ymin = y; if (y > ymax) ymax = y;
      });
    });
    if (!isFinite(xmin)) {
      html("div", { class: "chart-empty" }, el, "No finite values to draw.");
      return;
    }
    if (xmin === xmax) { xmin -= 1; xmax += 1; }
    if (ymin === ymax) {
      const d = logY ? ymin * 0.5 : (Math.abs(ymin) * 0.1 || 1);
      ymin -= d; ymax += d;
    } else if (!logY) {
      const pad = (ymax - ymin) * 0.05; ymin -= pad; ymax += pad;
    }
    const ly = function (v) { return Math.log10(v); };
    const sx = function (x) { return M.left + (x - xmin) / (xmax - xmin) * pw; };
    const sy = logY
      ? function (y) { return M.top + ph - (ly(y) - ly(ymin)) / (ly(ymax) - ly(ymin)) * ph; }
      : function (y) { return M.top + ph - (y - ymin) / (ymax - ymin) * ph; };

    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img",
                              "aria-label": options.label || "metric chart" }, el);
    const axis = svg("g", { class: "axis" }, root);
    const yt = logY ? logTicks(ymin, ymax) : niceTicks(ymin, ymax, 5);
    yt.forEach(function (t) {
      const y = sy(t);
      svg("line", { class: "grid-line", x1: M.left, x2: M.left + pw, y1: y, y2: y }, axis);
      svg("text", { x: M.left - 6, y: y + 3.5, "text-anchor": "end" }, axis).textContent = fmtTick(t);
    });
    const xfmt = options.xFormat || fmtTick;
    niceTicks(xmin, xmax, Math.max(2, Math.floor(pw / 90))).forEach(function (t) {
      const x = sx(t);
      svg("line", { class: "axis-line", x1: x, x2: x, y1: M.top + ph, y2: M.top + ph + 4 }, axis);
      svg("text", { x: x, y: M.top + ph + 16, "text-anchor": "middle" }, axis).textContent = xfmt(t);
    });
    svg("line", { class: "axis-line", x1: M.left, x2: M.left + pw, y1: M.top + ph, y2: M.top + ph }, axis);
    svg("line", { class: "axis-line", x1: M.left, x2: M.left, y1: M.top, y2: M.top + ph }, axis);
    svg("text", { x: M.left + pw, y: H - 1, "text-anchor": "end" }, axis).textContent = options.xLabel || "step";

    const plot = svg("g", {}, root);
    series.forEach(function (s) {
      let d = "", pen = false, drawn = 0;
      const dots = [];
      for (let i = 0; i < s.steps.length; i++) {
        const y = s.ys[i];
        if (!isFinite(y) || (logY && y <= 0)) { pen = false; continue; }
        const px = sx(s.steps[i]).toFixed(1), py = sy(y).toFixed(1);
        d += (pen ? "L" : "M") + px + " " + py;
        pen = true; drawn++;
        dots.push([px, py]);
      }
      if (drawn > 1) {
        svg("path", { class: s.raw ? "raw" : "series", d: d, stroke: s.color, "data-series": s.name }, plot);
      }
      if (drawn <= 60 && !s.raw) {
        dots.forEach(function (p) {
          svg("circle", { class: "dot", cx: p[0], cy: p[1], r: drawn === 1 ? 4 : 2.6, fill: s.color }, plot);
        });
      }
    });

    // hover: a cursor line and the value of each series at the nearest step;
    // drag across the plot to zoom into those steps, double-click to zoom out again
    const cursor = svg("line", { class: "cursor", y1: M.top, y2: M.top + ph, visibility: "hidden" }, root);
    const sel = svg("rect", { class: "zoom-sel", y: M.top, height: ph, width: 0, visibility: "hidden" }, root);
    const tip = html("div", { class: "tip" }, el);
    tip.style.display = "none";
    const hit = svg("rect", { class: "hit", x: M.left, y: M.top, width: pw, height: ph, fill: "transparent" }, root);
    const plotX = function (ev) {
      const box = root.getBoundingClientRect();
      return Math.max(M.left, Math.min(M.left + pw, (ev.clientX - box.left) * (W / box.width)));
    };
    const stepAt = function (x) { return xmin + (x - M.left) / pw * (xmax - xmin); };
    let dragFrom = null;
    hit.addEventListener("mousedown", function (ev) {
      if (!options.onZoom || ev.button !== 0) return;
      dragFrom = plotX(ev);
      ev.preventDefault();
    });
    const endDrag = function (ev) {
      if (dragFrom === null) return;
      const a = Math.min(dragFrom, plotX(ev)), b = Math.max(dragFrom, plotX(ev));
      dragFrom = null;
      sel.setAttribute("visibility", "hidden");
      if (b - a >= 6) options.onZoom(stepAt(a), stepAt(b));
    };
    hit.addEventListener("mouseup", endDrag);
    hit.addEventListener("dblclick", function () { if (options.onReset) options.onReset(); });
    hit.addEventListener("mousemove", function (ev) {
      const box = root.getBoundingClientRect();
      const x = (ev.clientX - box.left) * (W / box.width);
      const step = stepAt(x);
      if (dragFrom !== null) {
        const px = plotX(ev);
        sel.setAttribute("x", Math.min(dragFrom, px));
        sel.setAttribute("width", Math.abs(px - dragFrom));
        sel.setAttribute("visibility", "visible");
      }
      tip.textContent = "";
      let shownStep = null;
      series.forEach(function (s) {
        if (!s.steps.length || s.raw) return;
        const i = bisect(s.steps, step);
        if (shownStep === null) shownStep = s.steps[i];
        const line = html("div", {}, tip);
        html("span", { class: "swatch" }, line).style.background = s.color;
        line.appendChild(document.createTextNode(
          (series.length > 1 ? s.name + ": " : "") + fmt(s.ys[i]) + (series.length > 1 ? "" : "  (" + (options.xLabel || "step") + " " + xfmt(s.steps[i]) + ")")));
      });
      if (series.length > 1 && shownStep !== null) {
        html("div", { class: "muted" }, tip, (options.xLabel || "step") + " " + xfmt(shownStep));
      }
      const cx = sx(shownStep === null ? step : shownStep);
      cursor.setAttribute("x1", cx); cursor.setAttribute("x2", cx);
      cursor.setAttribute("visibility", "visible");
      tip.style.display = "block";
      const left = (cx / W) * box.width;
      tip.style.left = (left + 12 + tip.offsetWidth > box.width ? left - tip.offsetWidth - 12 : left + 12) + "px";
      tip.style.top = "8px";
    });
    hit.addEventListener("mouseleave", function (ev) {
      tip.style.display = "none";
      cursor.setAttribute("visibility", "hidden");
      endDrag(ev);
    });
  }

  // caption extras: point count (updated on zoom) and a log-scale toggle
  function decorate(box, el, info, canLog) {
    const cap = $("figcaption", box);
    if (!cap) return;
    let span = $(".info", cap);
    if (!span) {
      span = html("span", { class: "info" }, cap);
      html("span", { class: "info-text" }, span);
      if (canLog) {
        const label = html("label", { title: "Logarithmic y axis" }, span);
        const cb = html("input", { type: "checkbox", class: "logy" }, label);
        label.appendChild(document.createTextNode(" log"));
        cb.addEventListener("change", function () { el.dataset.log = cb.checked ? "1" : ""; el.redraw(); });
      }
    }
    $(".info-text", span).textContent = info + " ";
  }

  function maxPoints(el) { return Math.max(200, Math.min(4000, Math.round(el.clientWidth * 2))); }

  function historyUrl(runId, key, el) {
    return "/api/runs/" + encodeURIComponent(runId) + "/metric-history?key=" +
      encodeURIComponent(key) + "&max_points=" + maxPoints(el);
  }

  function allPositive(series) {
    return series.every(function (s) {
      return s.values.map(toNumber).filter(isFinite).every(function (v) { return v > 0; });
    });
  }

  function describe(histories) {
    const total = histories.reduce(function (a, h) { return a + h.total; }, 0);
    const down = histories.some(function (h) { return h.downsampled; });
    return fmtInt(total) + (total === 1 ? " point" : " points") + (down ? ", downsampled" : "");
  }

  /* Fetch the history of each source (its run and metric key; `key` by default), the zoomed
     step range if any, and draw; the page's x-axis and smoothing settings apply on redraw. */
  function drawHistories(el, sources, key) {
    el.classList.add("requested");
    if (!$("svg", el)) html("div", { class: "loading" }, el, "Loading…");
    const range = el.zoom ? "&min_step=" + Math.ceil(el.zoom[0]) + "&max_step=" + Math.floor(el.zoom[1]) : "";
    Promise.all(sources.map(function (s) { return getJSON(historyUrl(s.run_id, s.key || key, el) + range); }))
      .then(function (hs) {
        const again = function (zoom) { el.zoom = zoom; drawHistories(el, sources, key); };
        el.redraw = function () {
          const view = chartView(hs, sources);
          const byStep = view.mode === "step";
          el.dataset.xMode = view.mode;
          el.dataset.smoothedLast = view.last;
          lineChart(el, view.series, {
            logY: el.dataset.log === "1",
            label: key,
            xLabel: view.xLabel,
            xFormat: view.xFormat,
            onZoom: byStep ? function (lo, hi) { if (Math.floor(hi) >= Math.ceil(lo)) again([lo, hi]); } : null,
            onReset: el.zoom && byStep ? function () { again(null); } : null,
          });
          const info = describe(hs) + (el.zoom ? " in steps " + fmtInt(Math.ceil(el.zoom[0])) + "–" +
            fmtInt(Math.floor(el.zoom[1])) + " (double-click: all)" : "") + view.note;
          decorate(el.parentNode, el, info, allPositive(view.series));
        };
        el.redraw();
        el.classList.add("drawn");
        el.classList.toggle("zoomed", !!el.zoom);
      }).catch(function (e) { el.textContent = "Cannot load: " + e.message; });
  }

  // the run page's chart settings (x axis, smoothing); defaults elsewhere
  const chartSettings = { x: "step", smoothing: 0 };

  function ema(values, weight) {  // TensorBoard's debiased exponential moving average
    let last = 0, n = 0;
    return values.map(function (v) {
      if (!isFinite(v)) return v;
      last = last * weight + (1 - weight) * v; n++;
      return weight ? last / (1 - Math.pow(weight, n)) : v;
    });
  }

  function clock(secs) { return new Date(secs * 1000).toTimeString().slice(0, 8); }

  function chartView(hs, sources) {
    const timed = hs.every(function (h) { return h.timestamps; });
    const mode = chartSettings.x !== "step" && timed ? chartSettings.x : "step";
    const note = chartSettings.x !== "step" && !timed ? " (time axis: downsampled, shown by step)" : "";
    const w = chartSettings.smoothing;
    const series = [];
    let last = "";
    hs.forEach(function (h, j) {
      const t0 = h.timestamps && h.timestamps.length ? Math.min.apply(null, h.timestamps) : 0;
      const xs = mode === "step" ? h.steps : h.timestamps.map(function (t) { return (mode === "wall" ? t : t - t0) / 1000; });
      const order = xs.map(function (_, i) { return i; }).sort(function (a, b) { return xs[a] - xs[b]; });
      const x = order.map(function (i) { return xs[i]; });
      const ys = order.map(function (i) { return toNumber(h.values[i]); });
      const base = { name: sources[j].name, color: sources[j].color, steps: x };
      if (w > 0) series.push(Object.assign({ raw: true, values: ys }, base));
      const smooth = w > 0 ? ema(ys, w) : ys;
      series.push(Object.assign({ values: smooth }, base));
      if (j === 0 && smooth.length) last = fmt(smooth[smooth.length - 1]);
    });
    return {
      mode: mode, series: series, note: note, last: last,
      xLabel: { step: "step", wall: "time", relative: "seconds" }[mode],
      xFormat: mode === "wall" ? clock : null,
    };
  }

  function drawRunChart(el) {
    drawHistories(el, [{ run_id: el.dataset.run, name: el.dataset.key, color: COLORS[0] }], el.dataset.key);
  }

  function drawCompareChart(el, runs) {
    const key = el.dataset.key;
    const sources = [];
    runs.forEach(function (r, i) {
      if (key in r.metrics) sources.push({ run_id: r.run_id, name: r.name, color: COLORS[i % COLORS.length] });
    });
    drawHistories(el, sources, key);
  }

  function whenVisible(els, fn) {
    if (!("IntersectionObserver" in window)) { els.forEach(fn); return; }
    const io = new IntersectionObserver(function (entries) {
      entries.forEach(function (en) {
        if (en.isIntersecting) { io.unobserve(en.target); fn(en.target); }
      });
    }, { rootMargin: "300px" });
    els.forEach(function (el) { io.observe(el); });
  }

  // -- artifacts --------------------------------------------------------------------------

  function showArtifact(runId, path) {
    const pane = $("#artifact-preview");
    if (!pane) return;
    $$("#artifact-tree a.selected").forEach(function (a) { a.classList.remove("selected"); });
    $$("#artifact-tree a[data-artifact]").forEach(function (a) {
      if (a.dataset.artifact === path) a.classList.add("selected");
    });
    pane.textContent = "";
    html("p", { class: "muted" }, pane, "Loading " + path + "…");
    getJSON("/api/runs/" + encodeURIComponent(runId) + "/artifact-preview?path=" + encodeURIComponent(path))
      .then(function (p) {
        pane.textContent = "";
        const head = html("div", { class: "preview-head" }, pane);
        html("code", {}, head, p.path);
        html("span", { class: "muted" }, head, fmtInt(p.size) + " bytes" + (p.truncated ? " (preview truncated)" : ""));
        html("a", { href: p.url + "?download=1" }, head, "Download");
        if (p.kind === "image") {
          html("img", { src: p.url, alt: p.path }, pane);
        } else if (p.kind === "html") {
          // an empty sandbox: no scripts, no forms, an opaque origin (the server adds CSP sandbox too)
          html("iframe", { src: p.url, sandbox: "", title: p.path, referrerpolicy: "no-referrer" }, pane);
        } else if (p.kind === "table") {
          const wrap = html("div", { class: "table-wrap" }, pane);
          const table = html("table", { class: "grid" }, wrap);
          const rows = p.rows || [];
          if (rows.length) {
            const tr = html("tr", {}, html("thead", {}, table));
            rows[0].forEach(function (c) { html("th", {}, tr, c); });
            const body = html("tbody", {}, table);
            rows.slice(1).forEach(function (row) {
              const r = html("tr", {}, body);
              row.forEach(function (c) { html("td", {}, r, c); });
            });
          }
        } else if (p.kind === "text") {
          html("pre", {}, pane, p.text);
        } else {
          html("p", { class: "empty" }, pane, "Binary file; download it to look inside.");
        }
      }).catch(function (e) { pane.textContent = "Cannot preview: " + e.message; });
  }

  function initArtifacts(runId) {
    const tree = $("#artifact-tree");
    if (!tree) return;
    document.addEventListener("click", function (ev) {
      const a = ev.target.closest && ev.target.closest("a[data-artifact]");
      if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      ev.preventDefault();
      showArtifact(runId, a.dataset.artifact);
      if (!tree.contains(a)) $("#artifacts").scrollIntoView();
    });
    const files = $$("a[data-artifact]", tree).map(function (a) { return a.dataset.artifact; });
    const first = files.find(function (f) { return /\.(png|jpe?g|gif|svg|webp)$/i.test(f); }) ||
      files.find(function (f) { return /(^|\/)MLmodel$/.test(f); }) || files[0];
    if (first) showArtifact(runId, first);
  }

  // -- page wiring ------------------------------------------------------------------------

  function initRunsPage() {
    const form = $("#compare-form"), button = $("#compare-button");
    if (!form || !button) return;
    const update = function () {
      const n = $$("input[name=runs]:checked", form).length;
      button.disabled = n < 2 || n > 10;
      button.textContent = n ? "Compare " + n + " selected" : "Compare selected";
    };
    form.addEventListener("change", update);
    update();
  }

  function initCommon() {
    $$("button.copy").forEach(function (b) {
      b.addEventListener("click", function () {
        const done = function () { b.textContent = "Copied"; setTimeout(function () { b.textContent = "Copy"; }, 1500); };
        if (navigator.clipboard) navigator.clipboard.writeText(b.dataset.copy).then(done, function () {});
      });
    });
    $$("input.rowfilter").forEach(function (inp) {
      inp.addEventListener("input", function () {
        const q = inp.value.toLowerCase();
        $$("#" + inp.dataset.table + " tbody tr").forEach(function (tr) {
          tr.hidden = q !== "" && tr.textContent.toLowerCase().indexOf(q) < 0;
        });
      });
    });
    const only = $("#only-diff");
    if (only) {
      const apply = function () { $("#" + only.dataset.table).classList.toggle("only-diff", only.checked); };
      only.addEventListener("change", apply);
      apply();
    }
  }

  function init() {
    initCommon();
    initRunsPage();
    const data = pageData();
    const runCharts = $$(".chart[data-run]");
    whenVisible(runCharts, drawRunChart);
    if (data.run_id) initArtifacts(data.run_id);
    if (data.runs) {  // the compare page; its plots are compare.js's
      whenVisible($$(".chart[data-compare]"), function (el) { drawCompareChart(el, data.runs); });
    }
    window.addEventListener("resize", debounce(function () {
      $$(".chart.drawn").forEach(function (el) { if (el.redraw) el.redraw(); });
    }, 200));
  }

  function debounce(fn, ms) {
    let t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  // shared with the page scripts loaded after this one (runs_chart.js, run_page.js)
  window.autologUI = { $: $, $$: $$, svg: svg, html: html, pageData: pageData, toNumber: toNumber,
                       fmt: fmt, fmtTick: fmtTick, niceTicks: niceTicks, logTicks: logTicks,
                       getJSON: getJSON, COLORS: COLORS, debounce: debounce,
                       drawHistories: drawHistories, chartSettings: chartSettings };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
