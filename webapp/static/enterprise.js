// Enterprise Connect: keep each domain's counts, progress bar, mailbox rows and "Retry failed"
// button current while the calendar service answers. Without JavaScript the page shows the same
// as of its loading, with a Refresh link.
(function () {
  "use strict";
  var BUSY = 2000;   // while requests wait for an answer
  var IDLE = 15000;  // otherwise (an unlink or relink elsewhere still shows up)

  function update(section, data) {
    ["waiting", "linked", "failed", "total", "unsigned"].forEach(function (key) {
      if (!(key in data)) { return; }
      var el = section.querySelector('[data-count="' + key + '"]');
      if (el && el.textContent !== String(data[key])) { el.textContent = data[key]; }
    });
    var bar = section.querySelector('[data-role="bar"]');
    if (bar) {
      bar.max = data.total || 1;
      bar.value = data.linked + data.failed;
      bar.textContent = (data.linked + data.failed) + " of " + data.total + " answered";
    }
    var eta = section.querySelector('[data-role="eta"]');
    if (eta && typeof data.eta === "string") {
      // "about 12 minutes to go at the current pace", or nothing once no mailbox waits
      if (eta.textContent !== data.eta) { eta.textContent = data.eta; }
      eta.hidden = !data.eta;
    }
    var retry = section.querySelector('[data-role="retry"]');
    if (retry) {
      retry.disabled = !data.failed;
      var count = retry.querySelector('[data-role="retry-count"]');
      if (count) { count.textContent = data.failed ? " (" + data.failed + ")" : ""; }
    }
    var rows = section.querySelector('[data-role="rows"]');
    if (rows && typeof data.rows === "string" && !rows.contains(document.activeElement)) {
      // Server-rendered, escaped rows of the same filter and page (no script in them).
      rows.innerHTML = data.rows;
    }
  }

  // What tells two answers apart (the rows' CSRF tokens differ on every answer).
  function fingerprint(data) {
    var copy = {};
    Object.keys(data).forEach(function (key) { copy[key] = data[key]; });
    if (typeof copy.rows === "string") {
      copy.rows = copy.rows.replace(/name="csrf_token" value="[^"]*"/g, "");
    }
    return JSON.stringify(copy);
  }

  function poll(section) {
    var url = section.getAttribute("data-progress-url");
    var last = null;
    function tick() {
      var delay = IDLE;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          if (data.waiting) { delay = BUSY; }
          var key = fingerprint(data);
          if (key !== last) { update(section, data); last = key; }
        })
        .catch(function () { delay = BUSY; /* offline for a moment: try again soon */ })
        .then(function () { window.setTimeout(tick, delay); });
    }
    tick();
  }

  document.querySelectorAll("[data-progress-url]").forEach(poll);
})();
