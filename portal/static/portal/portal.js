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

// --- Issue 12: menu, confirmation dialog, focus after a decision, countdown, copy --------
// Everything below is progressive: without JavaScript the menu stays open, forms submit
// at once (the server still asks for a reason where one is required), times stay static.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Small screens: the main menu folds behind the "Menu" button.
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest(".menu-toggle");
    if (!toggle) return;
    var menu = document.getElementById(toggle.getAttribute("aria-controls"));
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (menu) menu.classList.toggle("open", open);
  });

  // Decisions that cannot be undone ask first, in an accessible <dialog>.
  // A button (or form) with data-confirm="question" opens it; data-confirm-ok names the
  // confirming button; data-confirm-reason="comment" asks for a required reason and
  // copies it into that field of the form before sending.
  var pending = null; // {trigger, proceed}

  function dialogParts() {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return null;
    return {
      dialog: dialog,
      title: document.getElementById("confirm-dialog-title"),
      text: document.getElementById("confirm-dialog-text"),
      reasonField: document.getElementById("confirm-dialog-reason-field"),
      reason: document.getElementById("confirm-dialog-reason"),
      error: document.getElementById("confirm-dialog-reason-error"),
      ok: document.getElementById("confirm-dialog-ok"),
      cancel: document.getElementById("confirm-dialog-cancel"),
    };
  }

  function reasonInput(trigger) {
    var name = trigger.getAttribute("data-confirm-reason");
    var form = trigger.form || trigger.closest("form");
    return name && form ? form.elements[name] : null;
  }

  function ask(trigger, proceed) {
    var parts = dialogParts();
    if (!parts) return false;
    pending = { trigger: trigger, proceed: proceed };
    parts.title.textContent = trigger.getAttribute("data-confirm-title") || "Are you sure?";
    parts.text.textContent = trigger.getAttribute("data-confirm");
    parts.ok.textContent = trigger.getAttribute("data-confirm-ok") || "Yes";
    var input = reasonInput(trigger);
    parts.reasonField.hidden = !input;
    parts.error.hidden = true;
    parts.reason.removeAttribute("aria-invalid");
    parts.reason.value = input ? input.value : "";
    parts.dialog.returnValue = "";
    parts.dialog.showModal();
    (input ? parts.reason : parts.cancel).focus();
    return true;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var parts = dialogParts();
    if (parts && form.closest("#confirm-dialog")) {
      // The dialog's own form: a confirmation without a required reason is refused.
      var confirming = event.submitter && event.submitter.value === "confirm";
      if (confirming && !parts.reasonField.hidden && !parts.reason.value.trim()) {
        event.preventDefault();
        parts.error.hidden = false;
        parts.reason.setAttribute("aria-invalid", "true");
        parts.reason.focus();
      }
      return;
    }
    var trigger = event.submitter && event.submitter.hasAttribute("data-confirm")
      ? event.submitter
      : form.hasAttribute("data-confirm") ? form : null;
    if (!trigger || form.getAttribute("data-confirmed") === "yes") return;
    var submitter = event.submitter;
    if (ask(trigger, function () {
      form.setAttribute("data-confirmed", "yes");
      if (submitter && submitter.form === form) form.requestSubmit(submitter);
      else form.requestSubmit();
      form.removeAttribute("data-confirmed");
    })) event.preventDefault();
  }, true);

  // htmx buttons (the approvals queue) ask through htmx's own confirm hook.
  document.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail.elt;
    if (!trigger || !trigger.hasAttribute || !trigger.hasAttribute("data-confirm")) return;
    event.preventDefault();
    if (!ask(trigger, function () { event.detail.issueRequest(true); })) event.detail.issueRequest(true);
  });

  document.addEventListener("close", function (event) {
    if (!event.target || event.target.id !== "confirm-dialog" || !pending) return;
    var parts = dialogParts();
    var job = pending;
    pending = null;
    if (event.target.returnValue === "confirm") {
      var input = reasonInput(job.trigger);
      if (input) input.value = parts.reason.value.trim();
      job.proceed();
    } else if (job.trigger.focus) {
      job.trigger.focus(); // back where the person was
    }
  }, true);

  // Keyboard focus survives the swaps: after a decision in the queue it moves to the next
  // row; when a poll replaces what had focus, it goes back to the element with the same id.
  var focusAfterSwap = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var row = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("tr[id^='queue-request-']");
    if (!row || event.detail.requestConfig.verb !== "post") return;
    var next = row.nextElementSibling;
    focusAfterSwap = { row: row.id, next: next ? next.id : "" };
  });
  var focusedId = "";
  document.addEventListener("htmx:beforeSwap", function () {
    var active = document.activeElement;
    focusedId = active && active.id && active !== document.body ? active.id : "";
  });
  // The decided row comes back (outerHTML): htmx:load fires on the new one.
  document.addEventListener("htmx:load", function (event) {
    if (!focusAfterSwap || !event.target || event.target.id !== focusAfterSwap.row) return;
    var job = focusAfterSwap;
    focusAfterSwap = null;
    setTimeout(function () {
      var target = job.next && document.getElementById(job.next);
      var control = target && (target.querySelector("textarea") || target.querySelector("button")
        || target.querySelector("a[href]"));
      if (!control) {
        var row = document.getElementById(job.row);
        control = row && row.querySelector("[role=status], [role=alert]");
        if (control) control.setAttribute("tabindex", "-1");
      }
      if (control) control.focus();
    }, 0);
  });
  function refocus() {
    var active = document.activeElement;
    if (focusedId && (!active || active === document.body)) {
      var again = document.getElementById(focusedId);
      if (again) again.focus();
    }
    focusedId = "";
  }
  // An outerHTML swap settles on the detached old element: htmx:load fires on the new one.
  document.addEventListener("htmx:afterSettle", refocus);
  document.addEventListener("htmx:load", function () { setTimeout(refocus, 0); });

  // Live countdowns to a grant's end (<time data-countdown datetime="...">).
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function tick() {
    var clocks = document.querySelectorAll("[data-countdown]");
    for (var i = 0; i < clocks.length; i++) {
      var end = Date.parse(clocks[i].getAttribute("datetime"));
      if (isNaN(end)) continue;
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      clocks[i].textContent = left === 0 ? "time is up"
        : (h ? h + " h " + pad(m) + " min" : m + " min " + pad(s) + " s") + " left";
    }
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 1000); });
  document.addEventListener("htmx:afterSettle", tick);

  // Copy buttons (data-copy="id of the field").
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field || !("value" in field)) return; // documents (<pre>) are federation/plan.js's
    var done = function () {
      var note = document.getElementById(button.getAttribute("data-copy") + "-copied");
      if (note) note.textContent = "Copied.";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {});
    } else {
      field.select();
      if (document.execCommand("copy")) done();
    }
  });
})();
