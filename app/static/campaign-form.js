// The campaign form's per-reminder template choices follow the form as it is edited: only
// the channels the campaign uses and the reminder numbers up to its maximum are shown (a
// row with a choice stays visible, so nothing chosen is hidden). Without this script every
// row shows; the server drops choices past the maximum when saving.
(function () {
  var form = document.getElementById("campaign-form");
  var box = document.getElementById("reminder-templates");
  if (!form || !box) return;
  function update() {
    var channel = form.elements["channel"].value;
    var max = parseInt(form.elements["max_reminders"].value, 10);
    var on = form.elements["reminder_enabled"].checked;
    if (isNaN(max)) max = 10;
    box.hidden = !on || max < 1;
    box.querySelectorAll(".reminder-channel").forEach(function (column) {
      column.hidden = channel !== "both" && column.getAttribute("data-channel") !== channel;
    });
    box.querySelectorAll(".reminder-choice").forEach(function (row) {
      var select = row.querySelector("select");
      var number = parseInt(row.getAttribute("data-reminder-number"), 10);
      row.hidden = number > max && !(select && select.value);
    });
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
