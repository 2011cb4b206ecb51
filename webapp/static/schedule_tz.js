// Show the candidate's slots in the time zone their browser reports, unless they chose one.
(function () {
  var select = document.getElementById("tz");
  if (!select || select.dataset.detected !== "yes" || !window.Intl) { return; }
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone || zone === select.value) { return; }
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === zone) {
      select.value = zone;
      document.getElementById("tz-form").submit();
      return;
    }
  }
})();
