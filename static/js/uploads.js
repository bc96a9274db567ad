// Upload progress: polls the batch's JSON status while a background job works on it, moves the
// progress bar, and reloads the page once the job is done so the preview or the result shows.
(function () {
  "use strict";
  var box = document.querySelector("[data-upload-status]");
  if (!box) {
    return;
  }
  var url = box.getAttribute("data-upload-status");
  var bar = box.querySelector("progress");
  var step = box.querySelector("[data-upload-step]");
  var interval = 1000;

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(response.status);
        }
        return response.json();
      })
      .then(function (status) {
        if (bar) {
          bar.value = status.progress;
          bar.textContent = status.progress + "%";
        }
        if (step) {
          step.textContent = status.step_label || "";
        }
        if (!status.running) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, interval);
      })
      .catch(function () {
        // A failed poll (a restarting server, a dropped connection) is retried more slowly.
        window.setTimeout(poll, interval * 3);
      });
  }

  window.setTimeout(poll, interval);
})();
