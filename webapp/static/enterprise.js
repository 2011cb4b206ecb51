// Enterprise Connect: keep each domain's mailbox counts and progress bar current while the
// calendar service answers. The page shows the same counts without JavaScript (and a Refresh link).
(function () {
  "use strict";
  var INTERVAL = 2000;

  function update(section, counts) {
    Object.keys(counts).forEach(function (key) {
      var el = section.querySelector('[data-count="' + key + '"]');
      if (el && el.textContent !== String(counts[key])) { el.textContent = counts[key]; }
    });
    var bar = section.querySelector('[data-role="bar"]');
    if (bar) {
      bar.max = counts.total || 1;
      bar.value = counts.linked + counts.failed;
      bar.textContent = (counts.linked + counts.failed) + " of " + counts.total + " answered";
    }
  }

  function poll(section) {
    var url = section.getAttribute("data-progress-url");
    var last = null;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (counts) {
          if (!counts) { return; }
          var key = JSON.stringify(counts);
          if (key !== last) { update(section, counts); last = key; }
        })
        .catch(function () { /* offline for a moment: try again on the next tick */ })
        .then(function () { window.setTimeout(tick, INTERVAL); });
    }
    tick();
  }

  document.querySelectorAll("[data-progress-url]").forEach(poll);
})();
