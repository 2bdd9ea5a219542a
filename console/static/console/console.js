/* pipewatch console: draws the charts a page carries as JSON, and gates live polling.
 *
 * A chart is an element with data-chart="<id of a <script type=application/json>>"; the JSON is the
 * columnar spec from console/services/charts.py: x (unix seconds), series (label, values, colour), bands
 * (pairs of series drawn as a shaded band), marks (time spans drawn behind the lines: anomaly events).
 * Times are drawn in the site's time zone (spec.tz), not the browser's. Each element keeps its uPlot
 * instance as element.uplot (the end-to-end tests count its points).
 */
(function () {
  "use strict";

  const MARK_FILL = { critical: "rgba(220, 38, 38, 0.22)", warning: "rgba(234, 179, 8, 0.25)", info: "rgba(59, 130, 246, 0.18)" };

  function marksPlugin(marks) {
    return {
      hooks: {
        drawClear: [
          function (u) {
            const ctx = u.ctx;
            const top = u.bbox.top;
            const height = u.bbox.height;
            const left = u.bbox.left;
            const right = u.bbox.left + u.bbox.width;
            ctx.save();
            for (const mark of marks) {
              const x0 = Math.max(left, u.valToPos(mark.from, "x", true));
              const x1 = Math.min(right, u.valToPos(mark.to, "x", true));
              if (x1 <= left || x0 >= right) continue;
              ctx.fillStyle = MARK_FILL[mark.severity] || MARK_FILL.warning;
              ctx.fillRect(x0, top, Math.max(2, x1 - x0), height);
            }
            ctx.restore();
          },
        ],
      },
    };
  }

  function options(spec, width) {
    const spark = spec.kind === "spark";
    const series = [{ label: "time (" + spec.tz + ")" }].concat(
      spec.series.map(function (s) {
        return {
          label: s.label,
          stroke: s.color,
          width: s.width || 1,
          dash: s.dash ? [6, 4] : undefined,
          points: { show: !!s.points, size: 5 },
          value: function (u, v) { return v == null ? "-" : v.toFixed(2); },
        };
      })
    );
    return {
      width: width,
      height: spark ? 56 : 240,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), spec.tz); },
      series: series,
      bands: (spec.bands || []).map(function (pair) {
        return { series: pair, fill: "rgba(22, 163, 74, 0.12)" };
      }),
      axes: spark
        ? [{ show: false }, { show: false }]
        : [{ stroke: "#475569" }, { stroke: "#475569", size: 56, label: spec.unit, labelSize: 18 }],
      legend: { show: !spark },
      cursor: spark ? { show: false } : { drag: { x: true, y: false } },
      scales: { x: { time: true } },
      plugins: spec.marks && spec.marks.length ? [marksPlugin(spec.marks)] : [],
    };
  }

  function draw(element) {
    if (element.uplot) return;
    const source = document.getElementById(element.dataset.chart);
    if (!source) return;
    const spec = JSON.parse(source.textContent);
    const data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    const width = Math.max(200, element.clientWidth || 600);
    element.uplot = new uPlot(options(spec, width), data, element);
    element.dataset.points = String(spec.points);
  }

  function drawAll(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("[data-chart]").forEach(draw);
  }

  let resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      document.querySelectorAll("[data-chart]").forEach(function (element) {
        if (element.uplot) element.uplot.setSize({ width: Math.max(200, element.clientWidth), height: element.uplot.height });
      });
    }, 150);
  });

  /* Live regions poll with hx-trigger="every Ns [pwCanPoll(this)]": never in a hidden tab, and never while
   * the operator is typing in the region (a swap would throw the note away). */
  window.pwCanPoll = function (element) {
    if (document.hidden) return false;
    const active = document.activeElement;
    return !(active && element && element.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
  };

  /* Errors from actions are shown, not swallowed: a 409 (the event changed meanwhile) swaps in the answer
   * with its message, anything else fills the page's flash line. */
  document.addEventListener("htmx:beforeSwap", function (event) {
    const xhr = event.detail.xhr;
    if (xhr.status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    } else if (xhr.status >= 400) {
      event.detail.shouldSwap = false;
      event.detail.isError = false;
      const flash = document.getElementById("flash");
      if (flash) {
        flash.textContent = xhr.status === 403
          ? "Not allowed: your account is not in the operator group (HTTP 403)."
          : "The server answered HTTP " + xhr.status + "; try again or reload the page.";
        flash.hidden = false;
      }
    }
  });

  if (window.htmx) {
    htmx.onLoad(drawAll);
  } else {
    document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  }
})();
