// The schedule page with pool picks: choosing a start time shows, right under the grid, who the
// pools would pick then and why (the same text the list below the grid gives for every start
// time, so the page says the same without this script).
(function () {
  var out = document.querySelector("[data-pick-explanation]");
  if (!out) { return; }
  function show(input) {
    if (!input || !input.dataset.picks) { out.hidden = true; return; }
    var label = input.parentNode.querySelector(".pick-time");
    out.textContent = (label ? label.textContent + "\n" : "") + input.dataset.picks;
    out.hidden = false;
  }
  document.addEventListener("change", function (event) {
    if (event.target && event.target.name === "slot") { show(event.target); }
  });
  show(document.querySelector("input[name=slot]:checked"));
})();
