// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // New request: show the chosen role's maximum duration and cap the input to it.
  function showDurationLimit() {
    var role = document.getElementById("id_role");
    var minutes = document.getElementById("id_duration_minutes");
    var hint = document.getElementById("duration-limit");
    if (!role || !minutes || !hint) return;
    var option = role.options[role.selectedIndex];
    var max = option && option.getAttribute("data-max-minutes");
    if (max) {
      minutes.max = max;
      hint.textContent = "At most " + max + " minutes for this role.";
    } else {
      minutes.removeAttribute("max");
      hint.textContent = "";
    }
  }

  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "id_role") showDurationLimit();
  });
  document.addEventListener("DOMContentLoaded", showDurationLimit);
})();
