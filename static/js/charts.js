// Draws every chart of the page with the plotly.js the app serves: each <script type="application/json"
// data-chart="ID"> holds {"figure", "config"} for the element with that id.
(function () {
  "use strict";
  function draw() {
    document.querySelectorAll("script[data-chart]").forEach(function (source) {
      var target = document.getElementById(source.getAttribute("data-chart"));
      if (!target || typeof Plotly === "undefined") { return; }
      var payload = JSON.parse(source.textContent);
      Plotly.newPlot(target, payload.figure.data, payload.figure.layout, payload.config);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
