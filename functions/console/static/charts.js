// The charts (uPlot, loaded as a classic script before the modules): traffic per second, the queues,
// the committed rows per instance, each over the last SERIES_SECONDS.

import { $ } from "./dom.js";
import { SERIES_SECONDS } from "./run.js";

const palette = { offered: "#8a94a8", ok: "#1a8f5a", client: "#c98a06", server: "#d1343b", retries: "#7a57d1", visible: "#2f6fed", inFlight: "#0d7f86", deadLetter: "#d1343b" };
const instanceColours = ["#2f6fed", "#7a57d1", "#0d7f86"];

function makeChart(id, series) {
  const box = $(id);
  const width = Math.max(box.clientWidth, 280);
  const height = box.classList.contains("small") ? 160 : 210;
  return new uPlot(
    {
      width,
      height,
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [{}, { size: 50 }],
      series: [{}, ...series.map(([label, color]) => ({ label, stroke: color, width: 1.6, spanGaps: false }))],
    },
    [[]].concat(series.map(() => [])),
    box,
  );
}

const lastWindow = (values) => values.slice(-SERIES_SECONDS);

// The page's charts, drawn from a run's series; they follow the window's width.
export function createCharts() {
  const charts = {};
  window.addEventListener("resize", () => {
    for (const [name, chart] of Object.entries(charts)) {
      chart.setSize({ width: Math.max($(`${name}-chart`).clientWidth, 280), height: chart.height });
    }
  });
  return {
    draw(series) {
      if (!charts.traffic) {
        charts.traffic = makeChart("traffic-chart", [["offered/s", palette.offered], ["2xx/s", palette.ok], ["4xx/s", palette.client], ["5xx + network errors/s", palette.server], ["retries/s", palette.retries]]);
        charts.queue = makeChart("queue-chart", [["visible", palette.visible], ["in flight", palette.inFlight], ["dead-letter", palette.deadLetter]]);
      }
      const names = Object.keys(series.counts).sort();
      if (!charts.counts && names.length) charts.counts = makeChart("counts-chart", names.map((name, i) => [name, instanceColours[i % instanceColours.length]]));
      const t = lastWindow(series.t);
      charts.traffic.setData([t, ...["offered", "ok", "client", "server", "retries"].map((field) => lastWindow(series[field]))]);
      charts.queue.setData([t, lastWindow(series.visible), lastWindow(series.inFlight), lastWindow(series.deadLetter)]);
      if (charts.counts) charts.counts.setData([t, ...names.map((name) => lastWindow(series.counts[name]))]);
    },
  };
}
