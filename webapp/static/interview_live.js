// The interview page while its calendar write (or delete) is pending: ask the server for the
// interview's status, more and more slowly, and once it has settled swap in the page's fresh
// content (status, time, video link, actions) without a reload. Without JavaScript the page
// has a Refresh link and reloads itself for a few minutes instead.
(function () {
  "use strict";
  var FIRST_DELAY = 1000;
  var MAX_DELAY = 10000;
  var GIVE_UP_AFTER = 3 * 60 * 1000;

  var root = document.querySelector(".interview-live[data-settling]");
  if (!root || !window.fetch || !window.DOMParser) { return; }
  var url = root.getAttribute("data-status-url");
  var announcer = document.querySelector('[data-role="live-announcement"]');
  var started = Date.now();
  var delay = FIRST_DELAY;

  function note(text) {
    var el = root.querySelector('[data-role="progress-note"]');
    if (el && el.firstChild && el.firstChild.nodeType === Node.TEXT_NODE) {
      el.firstChild.nodeValue = text;
    }
  }

  function announce(text) {
    if (announcer) { announcer.textContent = text; }
  }

  function swapIn() {
    return fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "Accept": "text/html" },
      cache: "no-store"
    })
      .then(function (response) {
        if (!response.ok) { throw new Error("page " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html")
          .querySelector(".interview-live");
        if (!fresh) { throw new Error("no interview on the page"); }
        var heading = fresh.querySelector("h1");
        if (heading) { document.title = heading.textContent + " · Rendezvous"; }
        root.replaceWith(document.importNode(fresh, true));
        root = document.querySelector(".interview-live");
        var badge = root.querySelector("dl.facts .badge");
        announce("The calendar answered: " + (badge ? badge.textContent : "updated") + ".");
        if (root.hasAttribute("data-settling")) { schedule(); }  // settled, then queued again
      })
      .catch(function () { window.location.reload(); });
  }

  function tick() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 404) { return { gone: true }; }
        return response.ok ? response.json() : null;
      })
      .then(function (answer) {
        if (answer && answer.gone) { return; }  // no longer ours to see: leave the page be
        if (answer && !answer.settling) { return swapIn(); }
        schedule();
      })
      .catch(function () { schedule(); });  // offline for a moment: try again later
  }

  function schedule() {
    if (Date.now() - started > GIVE_UP_AFTER) {
      note("The calendar has not confirmed yet; Rendezvous keeps trying in the background. ");
      return;
    }
    window.setTimeout(tick, delay);
    delay = Math.min(delay * 1.5, MAX_DELAY);
  }

  schedule();
})();
