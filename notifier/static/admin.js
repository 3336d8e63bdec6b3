// Admin UI behaviour: live Markdown preview, and the override-reason field shown only when needed.
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  var source = document.querySelector("[data-preview-url]");
  if (source) {
    var target = document.getElementById(source.dataset.previewTarget);
    var timer = null;
    var sequence = 0;
    var render = function () {
      var mine = ++sequence;
      fetch(source.dataset.previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ body_md: source.value }),
      })
        .then(function (r) { return r.json().then(function (d) { return [r.ok, d]; }); })
        .then(function (res) {
          if (mine !== sequence) return; // a newer keystroke already asked again
          if (res[0]) {
            target.innerHTML = res[1].html; // sanitised on the server by nh3
          } else {
            target.textContent = res[1].message || "Preview unavailable.";
          }
        })
        .catch(function () { target.textContent = "Preview unavailable (network error)."; });
    };
    source.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(render, 250);
    });
    if (!target.innerHTML.trim()) render();
  }

  var verdicts = document.querySelectorAll('input[name="verdict"]');
  var reason = document.getElementById("override_reason");
  if (verdicts.length && reason) {
    var wrapper = reason.closest(".field");
    var update = function () {
      var chosen = document.querySelector('input[name="verdict"]:checked');
      var suggested = verdicts[0].dataset.suggested;
      var overriding = suggested && chosen && chosen.value !== suggested;
      wrapper.hidden = !overriding && !reason.value;
      reason.required = !!overriding;
    };
    verdicts.forEach(function (v) { v.addEventListener("change", update); });
    update();
  }
})();
