// The schedule page without waiting in silence: a form marked data-progress disables its submit
// button and shows its message while the calendars answer. The day switcher (phone layout) marks
// the day shown. The members' busy blocks come after the free slots: fetched from the overlay
// URL the grid names and drawn onto it (without the script, a link reloads the page with them).
// Everything here only enhances: the page works the same without it.
(function () {
  var forms = document.querySelectorAll("form[data-progress]");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) { return; }
      var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
      var message = form.querySelector("[data-progress-message]");
      form.setAttribute("aria-busy", "true");
      if (message) { message.hidden = false; }
      // After the submission has been taken (a disabled button would not submit).
      window.setTimeout(function () {
        Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
      }, 0);
    });
  });
  // Coming back with the Back button shows the page as it was left: usable again.
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(forms, function (form) {
      form.removeAttribute("aria-busy");
      var message = form.querySelector("[data-progress-message]");
      if (message) { message.hidden = true; }
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = false; });
    });
  });

  function markDay() {
    var links = document.querySelectorAll("[data-day-link]");
    if (!links.length) { return; }
    var id = window.location.hash.slice(1);
    var known = Array.prototype.some.call(links, function (a) { return a.dataset.dayLink === id; });
    if (!known) { return; }
    Array.prototype.forEach.call(links, function (a) {
      if (a.dataset.dayLink === id) { a.setAttribute("aria-current", "true"); }
      else { a.removeAttribute("aria-current"); }
    });
  }
  window.addEventListener("hashchange", markDay);
  markDay();

  function drawBusy(week, overlay) {
    Array.prototype.forEach.call(overlay.querySelectorAll("[data-busy-day]"), function (part) {
      var day = document.getElementById(part.getAttribute("data-busy-day"));
      var grid = day && day.querySelector(".day-grid");
      if (!grid) { return; }
      var before = grid.querySelector(".panel-head");  // blocks go with the member lanes
      while (part.firstChild) { grid.insertBefore(document.adoptNode(part.firstChild), before); }
    });
    var legend = overlay.querySelector(".lane-legend");
    var shown = week.querySelector(".lane-legend");
    if (legend && shown) { shown.replaceWith(document.adoptNode(legend)); }
    var table = overlay.querySelector(".busy-text");
    if (table) { week.appendChild(document.adoptNode(table)); }
  }

  function loadBusy(week) {
    var status = week.querySelector("[data-busy-status]");
    var inline = status && status.querySelector("[data-busy-inline]");
    function say(text, keepLink) {
      if (!status) { return; }
      status.textContent = text + (keepLink && inline ? " " : "");
      if (keepLink && inline) { status.appendChild(inline); }
    }
    say("Loading everyone's busy time…", false);
    week.setAttribute("aria-busy", "true");
    fetch(week.getAttribute("data-busy-url"), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        return response.text().then(function (text) { return { ok: response.ok, text: text }; });
      })
      .then(function (answer) {
        var doc = new DOMParser().parseFromString(answer.text, "text/html");
        var overlay = doc.querySelector("[data-busy-overlay]");
        var problem = overlay && overlay.querySelector("[data-busy-problem]");
        if (!answer.ok || !overlay || problem) {
          say((problem ? problem.textContent : "Busy times could not be loaded.") + " Try again:", true);
          return;
        }
        drawBusy(week, overlay);
        say("Everyone's busy time is shown.", false);
      })
      .catch(function () { say("Busy times could not be loaded. Try again:", true); })
      .then(function () { week.removeAttribute("aria-busy"); });
  }
  if (window.fetch && window.DOMParser) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-busy-url]"), loadBusy);
  }
})();
