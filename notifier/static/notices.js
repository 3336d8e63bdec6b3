// Live progress of a notice: poll its JSON every 2 s until it is finished, then reload once.
(function () {
  "use strict";
  var section = document.querySelector("[data-progress-url]");
  if (!section) { return; }
  var url = section.getAttribute("data-progress-url");
  var finished = ["done", "cancelled"];
  var badge = document.getElementById("notice-state");
  var finishedAtLoad = finished.indexOf(badge ? badge.textContent.trim() : "");

  function update(data) {
    var counts = data.counts || {};
    Object.keys(counts).forEach(function (key) {
      document.querySelectorAll('[data-count="' + key + '"]').forEach(function (el) {
        if (el.querySelector("a")) { el.querySelector("a").textContent = counts[key]; }
        else { el.textContent = counts[key]; }
      });
      document.querySelectorAll('progress[data-bar="' + key + '"]').forEach(function (bar) {
        bar.max = Math.max(counts.total || 0, 1);
        bar.value = counts[key];
        bar.textContent = counts[key];
      });
      document.querySelectorAll('[data-percent="' + key + '"]').forEach(function (el) {
        // Rounded down: 100% only once every recipient is counted.
        el.textContent = (counts.total ? Math.floor(100 * counts[key] / counts.total) : 0) + "%";
      });
    });
    var state = document.getElementById("notice-state");
    if (finished.indexOf(data.state) !== -1 && finishedAtLoad === -1) {
      // Finished while watched: reload once so the buttons (no more Pause / Cancel), the
      // finish time and the attempts are the server's, not the ones from when it was sending.
      location.reload();
      return false;
    }
    if (state && data.state && state.textContent !== data.state) {
      state.textContent = data.state;
      state.className = "badge notice-state notice-state-" + data.state;
    }
    return finished.indexOf(data.state) === -1;
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) { if (update(data)) { setTimeout(poll, 2000); } })
      .catch(function () { setTimeout(poll, 10000); });
  }
  setTimeout(poll, 1000);
})();
