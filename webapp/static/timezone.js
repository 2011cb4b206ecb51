// Tell the server which time zone this browser is in, so it can propose it (never applied
// unasked). Without JavaScript the field stays empty and nothing is proposed.
(function () {
  if (!window.Intl || !Intl.DateTimeFormat) { return; }
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone) { return; }
  var fields = document.querySelectorAll("input[data-browser-zone]");
  for (var i = 0; i < fields.length; i++) { fields[i].value = zone; }
})();
