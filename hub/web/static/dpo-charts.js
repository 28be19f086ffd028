// Draws the DPO dashboard's charts with Chart.js from the JSON the page carries. The same
// figures are in the tables under each chart, so the page works without this script.
(function () {
  "use strict";

  var PALETTE = ["#0b4f8a", "#a4161a", "#1d6b32", "#8a4b00", "#5b2a86", "#00606b", "#6b4e16", "#3d3d3d"];

  function datasets(series) {
    var out = [];
    series.forEach(function (s, i) {
      var colour = PALETTE[i % PALETTE.length];
      out.push({ label: s.name + " — disclosures", data: s.allowed, stack: s.name, backgroundColor: colour, borderColor: colour, borderWidth: 1 });
      out.push({ label: s.name + " — denials", data: s.denied, stack: s.name, backgroundColor: "#ffffff", borderColor: colour, borderWidth: 2 });
    });
    return out;
  }

  function weekly(canvasId, weeks, series) {
    var canvas = document.getElementById(canvasId);
    if (!canvas) { return; }
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: weeks, datasets: datasets(series) },
      options: {
        animation: false,
        responsive: true,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } }
      }
    });
  }

  function reasons(canvasId, rows) {
    var canvas = document.getElementById(canvasId);
    if (!canvas) { return; }
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.code.replace(/_/g, " "); }),
        datasets: [{ label: "denials", data: rows.map(function (r) { return r.count; }), backgroundColor: "#a4161a" }]
      },
      options: {
        animation: false,
        responsive: true,
        indexAxis: "y",
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { display: false } }
      }
    });
  }

  function draw() {
    var source = document.getElementById("dpo-chart-data");
    if (!source || !window.Chart) { return; }
    var data = JSON.parse(source.textContent);
    weekly("chart-agency", data.weeks, data.by_agency);
    weekly("chart-purpose", data.weeks, data.by_purpose);
    reasons("chart-reasons", data.reasons);
    document.documentElement.setAttribute("data-charts", "drawn");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
}());
