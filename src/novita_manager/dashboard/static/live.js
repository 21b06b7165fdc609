// The dashboard's only script besides htmx: confirmations, and live updates.
// Live updates: the page listens to the event stream named by <body data-live>; on each event
// the parts of the page marked `hx-trigger="nm:refresh from:body"` fetch themselves again from
// the server (htmx), so what is shown is always the server's rendering, never patched by hand.
// EventSource reconnects by itself and resumes with Last-Event-ID.
(function () {
  "use strict";

  var EVENT_TYPES = [
    "instance.status", "instance.running", "instance.failed", "instance.stopped",
    "instance.deleted", "instance.reclaiming", "instance.reclaimed", "instance.recovered",
    "instance.expiring"
  ];

  // <form data-confirm="Stop gpu-1?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute ? form.getAttribute("data-confirm") : null;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  function start() {
    var url = document.body.getAttribute("data-live");
    var badge = document.getElementById("live");
    if (!url || !window.EventSource) {
      return;
    }
    var pending = null;
    function refresh() {
      if (pending !== null) {
        return;  // one refetch for a burst of events
      }
      pending = window.setTimeout(function () {
        pending = null;
        if (window.htmx) {
          window.htmx.trigger(document.body, "nm:refresh");
        }
      }, 250);
    }
    var source = new EventSource(url);
    source.onopen = function () { badge.setAttribute("data-state", "on"); };
    source.onerror = function () { badge.setAttribute("data-state", "reconnecting"); };
    source.onmessage = refresh;
    EVENT_TYPES.forEach(function (type) { source.addEventListener(type, refresh); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
