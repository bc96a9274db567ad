// Draws every chart of the page with the plotly.js the app serves: each <script type="application/json"
// data-chart="ID"> holds {"figure", "config"} for the element with that id.
(function () {
  "use strict";
  // The page's language for plotly's toolbar: {"locale", "locales"} in <script id="plotly-locale">.
  function pageLocale() {
    var source = document.getElementById("plotly-locale");
    return source ? JSON.parse(source.textContent) : {};
  }
  function draw() {
    var locale = pageLocale();
    document.querySelectorAll("script[data-chart]").forEach(function (source) {
      var target = document.getElementById(source.getAttribute("data-chart"));
      if (!target || typeof Plotly === "undefined") { return; }
      var payload = JSON.parse(source.textContent);
      var config = Object.assign({}, payload.config, locale);
      // On a phone the toolbar would sit over the legend and the bars' labels: it stays away there.
      if (window.matchMedia("(max-width: 720px)").matches) {
        config.displayModeBar = false;
        // A bar's full words ("67% (2/3) · short by 1") run off a phone's narrow chart: the share only.
        payload.figure.data.forEach(function (trace) {
          if (trace.meta && trace.meta.phone_text) { trace.text = trace.meta.phone_text; }
        });
      }
      Plotly.newPlot(target, payload.figure.data, payload.figure.layout, config);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
