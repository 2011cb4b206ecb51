// The schedule page without waiting in silence: a form marked data-progress disables its submit
// button and shows its message while the calendars answer. The day switcher (phone layout) marks
// the day shown. Everything here only enhances: the page works the same without it.
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
})();
