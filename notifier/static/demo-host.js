/* The demo host app's own code: it receives the widget's decisions through a callback. */
window.demoHostCallback = function (detail) {
  var log = document.getElementById("host-log");
  if (!log) return;
  var item = document.createElement("li");
  item.textContent = detail.event + ": " + detail.policy + " v" + detail.version +
    " (record #" + detail.record.id + ")";
  log.appendChild(item);
};
