// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // New request: show the chosen roles' maximum duration (the tightest one when several
  // are ticked) and cap the input to it.
  function showDurationLimit() {
    var role = document.getElementById("id_role");
    var minutes = document.getElementById("id_duration_minutes");
    var hint = document.getElementById("duration-limit");
    if (!role || !minutes || !hint) return;
    var max = null;
    var chosen = role.options
      ? [role.options[role.selectedIndex]]
      : role.querySelectorAll("input[data-max-minutes]:checked");
    for (var i = 0; i < chosen.length; i++) {
      var limit = chosen[i] && parseInt(chosen[i].getAttribute("data-max-minutes"), 10);
      if (limit && (max === null || limit < max)) max = limit;
    }
    if (max) {
      minutes.max = max;
      hint.textContent =
        "At most " + max + " minutes for " + (chosen.length > 1 ? "these roles." : "this role.");
    } else {
      minutes.removeAttribute("max");
      hint.textContent = "";
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && (target.id === "id_role" || (target.name === "role" && target.type === "checkbox")))
      showDurationLimit();
  });
  document.addEventListener("DOMContentLoaded", showDurationLimit);
})();

// Print buttons (the failover report): plain buttons, so the page works without JS too.
document.addEventListener("click", function (event) {
  var target = event.target;
  if (target && target.closest && target.closest("[data-print]")) window.print();
});
