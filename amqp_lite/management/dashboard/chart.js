// Line charts of polled values, drawn as SVG: a sample every refresh, kept in the page.

import { clear, h, s } from "./ui.js";

const HEIGHT = 170;
const MARGIN = { top: 10, right: 12, bottom: 22, left: 52 };
export const RANGES = [
  [60_000, "Charts: last minute"],
  [600_000, "Charts: last 10 minutes"],
  [3_600_000, "Charts: last hour"],
];
let rangeMs = RANGES[1][0];
const charts = new Set();

export function setRange(ms) {
  rangeMs = ms;
  for (const chart of charts) chart.draw();
}

export const currentRange = () => rangeMs;

/** Samples of several series over time: {t, values: [...]}, at most an hour of them. */
export class History {
  constructor() {
    this.samples = [];
  }

  add(values, t = Date.now()) {
    this.samples.push({ t, values });
    const cutoff = t - RANGES[RANGES.length - 1][0];
    while (this.samples.length && this.samples[0].t < cutoff) this.samples.shift();
  }
}

/** Gridlines at round steps (1, 2 or 5 times a power of ten), about four of them. */
function ticks(max, whole) {
  const rough = Math.max(max, whole ? 1 : 0.001) / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  let step = [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= rough);
  if (whole) step = Math.max(1, Math.round(step));
  const count = Math.max(1, Math.ceil(max / step));
  return Array.from({ length: count + 1 }, (_, i) => i * step);
}

const axisNumber = new Intl.NumberFormat("en", { maximumFractionDigits: 3 });

function clock(t) {
  return new Date(t).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export class LineChart {
  /** series: [{label, hint}], format(value) for the legend; unit "/s" for rates, "" for counts. */
  constructor(title, series, format, history, unit = "") {
    this.series = series;
    this.format = format;
    this.unit = unit;
    this.history = history;
    this.plot = h("div", { class: "chart-plot" });
    this.legend = h("ul", { class: "legend" });
    this.element = h("figure", { class: "chart" }, h("figcaption", {}, title), this.plot, this.legend);
    charts.add(this);
    let drawnWidth = 0;
    new ResizeObserver(() => {
      if (this.plot.clientWidth !== drawnWidth) {
        drawnWidth = this.plot.clientWidth;
        this.draw();
      }
    }).observe(this.plot);
  }

  dispose() {
    charts.delete(this);
  }

  draw() {
    if (!this.element.isConnected) return;
    const now = Date.now();
    const samples = this.history.samples.filter((p) => p.t >= now - rangeMs);
    const latest = samples[samples.length - 1];
    clear(
      this.legend,
      this.series.map((serie, i) =>
        h(
          "li",
          { title: serie.hint },
          h("span", { class: `swatch s${i}` }),
          h("span", { class: "legend-label" }, serie.label),
          h("span", { class: "legend-value" }, latest ? this.format(latest.values[i]) : "–"),
        ),
      ),
    );
    const width = Math.max(this.plot.clientWidth, 200);
    if (samples.length < 2) {
      clear(this.plot, h("p", { class: "empty chart-empty" }, "Collecting samples: the chart starts with the next refresh."));
      return;
    }
    const marks = ticks(Math.max(...samples.flatMap((p) => p.values)), this.unit === "");
    const top = marks[marks.length - 1];
    const start = samples[0].t;
    const span = Math.max(now - start, 1);
    const innerW = width - MARGIN.left - MARGIN.right;
    const innerH = HEIGHT - MARGIN.top - MARGIN.bottom;
    const x = (t) => MARGIN.left + ((t - start) / span) * innerW;
    const y = (v) => MARGIN.top + innerH - (v / top) * innerH;
    const grid = marks.map((value) => {
      return s(
        "g",
        { class: "grid" },
        s("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(value), y2: y(value) }),
        s("text", { x: MARGIN.left - 6, y: y(value) + 4, "text-anchor": "end" }, `${axisNumber.format(value)}${this.unit}`),
      );
    });
    // Start, middle and now; a label the same as the one before it (a short span) is left out.
    const times = [start, start + span / 2, now].map((t, i, all) =>
      i && clock(t) === clock(all[i - 1])
        ? null
        : s("text", { class: "axis", x: x(t), y: HEIGHT - 6, "text-anchor": ["start", "middle", "end"][i] }, clock(t)),
    );
    // Draw the last series first, so the first (the most watched) lies on top.
    const lines = this.series
      .map((_, i) => {
        const d = samples.map((p, j) => `${j ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.values[i]).toFixed(1)}`).join("");
        return s("path", { class: `line s${i}`, d });
      })
      .reverse();
    clear(
      this.plot,
      s(
        "svg",
        { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "img", "aria-label": this.element.querySelector("figcaption").textContent },
        grid,
        times,
        lines,
      ),
    );
  }
}

/** The select that sets how much time every chart shows. */
export function rangeSelect() {
  const control = h("select", { name: "range", title: "Time span of the charts" });
  for (const [ms, label] of RANGES) control.append(h("option", { value: String(ms), selected: ms === rangeMs }, label));
  control.addEventListener("change", () => setRange(Number(control.value)));
  return control;
}
