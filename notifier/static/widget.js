/* Policy Notifier prompt widget: plain JS, no framework.
 * <script src="https://notifier.example/widget.js" data-token="<signed user token>"
 *         data-callback="onPolicyDecision" defer></script>
 * or PolicyNotifier.init({token, onDecision, base}) from your own script. */
(function () {
  "use strict";
  var script = document.currentScript;
  var state = { items: [], opts: null, root: null, lastFocus: null, inerted: [] };

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  function call(path, body) {
    return fetch(state.opts.base + path, {
      method: "POST",
      credentials: "omit",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-Widget-Token": state.opts.token
      },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.message || ("HTTP " + r.status)); }
        return data;
      });
    });
  }

  function notify(detail) {
    var cb = state.opts.onDecision;
    if (typeof cb === "string") cb = window[cb];
    if (typeof cb === "function") { try { cb(detail); } catch (e) { /* host bug */ } }
    document.dispatchEvent(new CustomEvent("policynotifier:decision", { detail: detail }));
  }

  function focusables(container) {
    return Array.prototype.filter.call(
      container.querySelectorAll("a[href], button:not([disabled]), [tabindex='0']"),
      function (n) { return n.offsetParent !== null || n === document.activeElement; }
    );
  }

  function trap(event) {
    if (!state.root || !state.root.classList.contains("pn-modal-open")) return;
    if (event.key === "Escape") { event.preventDefault(); return; } /* blocking: no escape */
    if (event.key !== "Tab") return;
    var items = focusables(state.root.querySelector(".pn-dialog"));
    if (!items.length) return;
    var first = items[0], last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
    else if (!state.root.contains(document.activeElement)) { event.preventDefault(); first.focus(); }
  }

  function setInert(on) {
    if (on) {
      Array.prototype.forEach.call(document.body.children, function (child) {
        if (child !== state.root && !child.hasAttribute("inert") && child.tagName !== "SCRIPT") {
          child.setAttribute("inert", "");
          state.inerted.push(child);
        }
      });
    } else {
      state.inerted.forEach(function (child) { child.removeAttribute("inert"); });
      state.inerted = [];
    }
  }

  function close() {
    var wasModal = state.root && state.root.classList.contains("pn-modal-open");
    if (state.root) { state.root.remove(); state.root = null; }
    setInert(false);
    if (wasModal && state.lastFocus && state.lastFocus.focus) state.lastFocus.focus();
  }

  function promptText(item, heading, body, labels) {
    return [heading, item.prompt, body, "Buttons: " + labels.join(" / ")].join("\n");
  }

  function render() {
    close();
    var item = state.items[0];
    if (!item) return;
    var blocking = !!item.blocking;
    var uid = "pn-" + item.version_uid.slice(0, 8);
    var first = item.version === 1; /* a first version: nothing changed before it */
    var heading = blocking
      ? item.title + (first ? ": please accept it to continue" : ": please accept the updated version to continue")
      : (first ? "New: " + item.title : item.title + " is changing");
    var when = new Date(item.effective_at).toLocaleDateString(document.documentElement.lang || undefined,
      { year: "numeric", month: "long", day: "numeric" });
    var body = (first ? "Summary: " : "What changed: ") + item.summary + " Effective " + when + ".";
    var labels = ["I accept", "Decline"];

    var root = el("div", { "class": "pn-root" + (blocking ? " pn-modal-open" : "") });
    var box = blocking
      ? el("div", { "class": "pn-dialog", role: "dialog", "aria-modal": "true",
                    "aria-labelledby": uid + "-h", "aria-describedby": uid + "-d" })
      : el("section", { "class": "pn-banner", role: "region", "aria-labelledby": uid + "-h" });
    if (blocking) root.appendChild(el("div", { "class": "pn-backdrop" }));
    box.appendChild(el(blocking ? "h2" : "h2", { id: uid + "-h", "class": "pn-title",
                                                 tabindex: "-1" }, heading));
    var desc = el("div", { id: uid + "-d" });
    desc.appendChild(el("p", { "class": "pn-text" }, item.prompt));
    desc.appendChild(el("p", { "class": "pn-text" }, body));
    box.appendChild(desc);
    var links = el("p", { "class": "pn-links" });
    if (!first) {
      var red = el("a", { href: item.links.redline, target: "_blank", rel: "noopener" },
                   "See exactly what changed");
      red.appendChild(el("span", { "class": "pn-sr" }, " (opens in a new tab)"));
      links.appendChild(red);
      links.appendChild(document.createTextNode(" · "));
    }
    var full = el("a", { href: item.links.text, target: "_blank", rel: "noopener" }, "Read the full text");
    full.appendChild(el("span", { "class": "pn-sr" }, " (opens in a new tab)"));
    links.appendChild(full);
    box.appendChild(links);
    var actions = el("div", { "class": "pn-actions" });
    var accept = el("button", { type: "button", "class": "pn-btn pn-primary" }, labels[0]);
    var decline = el("button", { type: "button", "class": "pn-btn" }, labels[1]);
    actions.appendChild(accept);
    actions.appendChild(decline);
    if (!blocking) {
      var later = el("button", { type: "button", "class": "pn-btn pn-link" }, "Not now");
      later.addEventListener("click", function () { state.items.shift(); render(); });
      actions.appendChild(later);
    }
    box.appendChild(actions);
    var status = el("p", { "class": "pn-status", role: "status", "aria-live": "polite" });
    box.appendChild(status);
    root.appendChild(box);

    function decide(decision) {
      accept.disabled = decline.disabled = true;
      status.textContent = "Saving…";
      call("/widget/v1/decisions", {
        version_uid: item.version_uid, decision: decision,
        prompt_text: promptText(item, heading, body, labels),
        locale: navigator.language || ""
      }).then(function (record) {
        state.items.shift();
        notify({ event: decision, policy: item.policy, version: item.version, record: record });
        if (decision === "declined" && blocking) {
          state.items.unshift(item); /* still required: keep the prompt, say so */
          render();
          state.root.querySelector(".pn-status").textContent =
            "Your decline is recorded. You need to accept to keep using the service.";
          return;
        }
        render();
      }).catch(function (err) {
        accept.disabled = decline.disabled = false;
        status.textContent = "Could not save your choice: " + err.message + " Please try again.";
      });
    }
    accept.addEventListener("click", function () { decide("accepted"); });
    decline.addEventListener("click", function () { decide("declined"); });

    state.root = root;
    if (blocking) {
      state.lastFocus = document.activeElement;
      document.body.appendChild(root);
      setInert(true);
      box.querySelector(".pn-title").focus();
    } else {
      document.body.insertBefore(root, document.body.firstChild);
    }
  }

  function load() {
    return call("/widget/v1/activity").then(function (data) {
      state.items = data.pending.filter(function (i) { return i.blocking || !i.declined_at; })
        .sort(function (a, b) { return (b.blocking ? 1 : 0) - (a.blocking ? 1 : 0); });
      (data.implied || []).forEach(function (rec) {
        notify({ event: "implied", policy: rec.policy, version: rec.version, record: rec });
      });
      render();
      return data;
    });
  }

  function init(opts) {
    state.opts = {
      token: opts.token,
      onDecision: opts.onDecision,
      base: (opts.base || (script ? new URL(script.src).origin : location.origin)).replace(/\/$/, "")
    };
    if (!document.querySelector("link[data-pn-css]")) {
      var css = el("link", { rel: "stylesheet", href: state.opts.base + "/widget.css", "data-pn-css": "" });
      document.head.appendChild(css);
    }
    document.addEventListener("keydown", trap, true);
    return load();
  }

  window.PolicyNotifier = { init: init, refresh: function () { return load(); } };
  if (script && script.dataset.token) {
    var start = function () {
      init({ token: script.dataset.token, onDecision: script.dataset.callback }).catch(function (e) {
        if (window.console) console.warn("Policy Notifier:", e.message);
      });
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }
})();
