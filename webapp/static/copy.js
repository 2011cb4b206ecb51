// Copy buttons: a button with data-copy="<input id>" copies that field's text to the clipboard
// and says so in the page's status region (#copy-status). Without JavaScript the buttons stay
// hidden and the read-only field can still be selected and copied by hand.
(function () {
  var status = document.getElementById("copy-status");
  function say(message) {
    if (status) { status.textContent = ""; status.textContent = message; }
  }
  function fallback(field) {
    field.focus();
    field.select();
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }
  function copied(button) {
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    button.textContent = "Copied";
    button.classList.add("copied");
    say("Link copied to the clipboard.");
    window.setTimeout(function () {
      button.textContent = label;
      button.classList.remove("copied");
    }, 2000);
  }
  var buttons = document.querySelectorAll("button[data-copy]");
  for (var i = 0; i < buttons.length; i++) {
    (function (button) {
      var field = document.getElementById(button.getAttribute("data-copy"));
      if (!field) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = field.value;
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(
            function () { copied(button); },
            function () {
              if (fallback(field)) { copied(button); } else { say("Select the link and copy it."); }
            }
          );
        } else if (fallback(field)) {
          copied(button);
        } else {
          say("Select the link and copy it.");
        }
      });
    })(buttons[i]);
  }
})();
