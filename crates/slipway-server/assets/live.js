// slipway console: live updates. The pages are complete without this script; it only
// refreshes the parts marked data-live when a status changes (server-sent events of the
// session's own /events stream) and, while a rollout moves or a step's log grows, every
// few seconds.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch || !window.DOMParser) return;
  var parts = function () { return document.querySelectorAll("[data-live][id]"); };
  if (!parts().length) return;
  var note = document.getElementById("live-note");
  var busy = false, again = false, stopped = false;

  // A part the user is working in (focus inside, or a comment typed) is left alone.
  function inUse(el) {
    if (el.contains(document.activeElement) && document.activeElement !== document.body) return true;
    var fields = el.querySelectorAll("textarea, input[type=text]");
    for (var i = 0; i < fields.length; i++) if (fields[i].value) return true;
    return false;
  }

  function stop(message) {
    stopped = true;
    if (note) note.textContent = message;
  }

  function refresh() {
    if (stopped) return;
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (resp) {
        if (resp.redirected || resp.status === 401 || resp.status === 403) {
          stop("Live updates stopped: your session has ended. Reload to sign in.");
          return null;
        }
        return resp.ok ? resp.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var list = parts();
        for (var i = 0; i < list.length; i++) {
          var fresh = doc.getElementById(list[i].id);
          if (fresh && !inUse(list[i])) list[i].replaceWith(document.importNode(fresh, true));
        }
        if (doc.body.dataset.moving) document.body.dataset.moving = "1";
        else delete document.body.dataset.moving;
        if (note) note.textContent = "Updated " + new Date().toLocaleTimeString();
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  var events = new EventSource("/events");
  events.addEventListener("status", refresh);
  // A pipeline run's or job's change: for the pages that show runs (body data-runs: one
  // run's id, or * for any); the board and the others ignore them.
  events.addEventListener("run", function (e) {
    var follows = document.body.dataset.runs;
    if (!follows) return;
    try {
      if (follows === "*" || String(JSON.parse(e.data).run) === follows) refresh();
    } catch (err) { refresh(); }
  });
  // The browser reconnects by itself after a network error; a refused stream (the
  // session ended) closes for good.
  events.onerror = function () {
    if (events.readyState === EventSource.CLOSED) stop("Live updates stopped. Reload the page.");
  };
  setInterval(function () { if (document.body.dataset.moving) refresh(); }, 2000);
})();
