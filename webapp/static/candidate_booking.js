// The candidate's booking page: choosing a day shows its times without reloading the page.
// Without JavaScript each day is a link that reloads the page with ?day= (same result).
(function () {
  var days = document.querySelectorAll("a.cal-day[data-day]");
  if (!days.length || !window.history) { return; }
  function choose(link) {
    var day = link.getAttribute("data-day");
    var panel = document.getElementById("times-" + day);
    if (!panel) { return false; }
    var panels = document.querySelectorAll("fieldset.times");
    for (var i = 0; i < panels.length; i++) {
      panels[i].hidden = panels[i] !== panel;
      if (panels[i] !== panel) {
        var radios = panels[i].querySelectorAll("input[type=radio]");
        for (var j = 0; j < radios.length; j++) { radios[j].checked = false; }
      }
    }
    for (var k = 0; k < days.length; k++) {
      if (days[k] === link) { days[k].setAttribute("aria-current", "date"); }
      else { days[k].removeAttribute("aria-current"); }
    }
    var dayField = document.querySelector("#tz-form input[name=day]");
    if (dayField) { dayField.value = day; }
    history.replaceState(null, "", link.getAttribute("href").split("#")[0]);
    var first = panel.querySelector("input[type=radio]");
    if (first) { first.focus(); }
    return true;
  }
  for (var i = 0; i < days.length; i++) {
    days[i].addEventListener("click", function (event) {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) { return; }
      if (choose(this)) { event.preventDefault(); }
    });
  }
})();
