// Template editor: live preview from the server, with its SMS count (app/campaigns/sms.py)
// of the sample rendered with the real link length, and the cost warning for 2+ texts.
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form) { return; }
  var editor = document.getElementById("template-editor");
  // The same words as the sms_counter macro in message_templates/form.html.
  function showCount(element, count) {
    if (!element) { return; }
    element.textContent = "";
    var line = document.createElement("span");
    line.title = count.encoding + " encoding, " + count.per_segment + " units per segment";
    line.innerHTML = "<strong></strong> character" + (count.units === 1 ? "" : "s") +
      " · <strong></strong> text message" + (count.segments === 1 ? "" : "s") +
      " (up to " + count.per_segment + " per message" + (count.segments > 1 ? " once split" : "") +
      (count.segments ? "; " + count.remaining + " left" : "") + ")";
    var strongs = line.querySelectorAll("strong");
    strongs[0].textContent = count.units;
    strongs[1].textContent = count.segments;
    element.appendChild(line);
    if (count.non_gsm && count.non_gsm.length) {
      var note = document.createElement("div");
      note.className = "text-warning-emphasis";
      note.textContent = "These characters make each text message hold 70 characters instead of 160: " +
        count.non_gsm.join(" ");
      element.appendChild(note);
    }
  }

  var state = document.getElementById("preview-state");
  var timer = null, sequence = 0;

  function render(data) {
    var errors = document.getElementById("preview-errors");
    errors.textContent = "";
    Object.keys(data.errors || {}).forEach(function (field) {
      var li = document.createElement("li");
      var strong = document.createElement("strong");
      strong.textContent = field;
      li.appendChild(strong);
      li.appendChild(document.createTextNode(": " + data.errors[field]));
      errors.appendChild(li);
    });
    document.getElementById("preview-subject").textContent = data.subject || "";
    document.getElementById("preview-html").srcdoc = data.html || "";
    document.getElementById("preview-text").textContent = data.text || "";
    document.getElementById("preview-sms").textContent = data.text || "";
    if (data.sms) {
      showCount(document.getElementById("sms-counter"), data.sms);
      showCount(document.getElementById("sms-counter-live"), data.sms);
    }
    var warning = document.getElementById("sms-cost-warning");
    if (warning) { warning.textContent = data.cost_warning || ""; }
  }

  function refresh() {
    var mine = ++sequence;
    if (state) { state.textContent = "updating…"; }
    fetch(form.getAttribute("data-preview-url"), {method: "POST", body: new FormData(form), credentials: "same-origin",
                                                  headers: {"Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (mine !== sequence) { return; }
        if (data.error) { state.textContent = data.error; return; }
        render(data);
        if (state) { state.textContent = ""; }
      })
      .catch(function () { if (state) { state.textContent = "preview unavailable"; } });
  }

  function onChange() {
    var channel = form.elements.channel.value;
    var mode = channel === "sms" ? "html" : form.elements.mode.value;
    editor.classList.remove("channel-email", "channel-sms", "mode-simple", "mode-html", "kind-initial", "kind-reminder");
    editor.classList.add("channel-" + channel, "mode-" + mode, "kind-" + form.elements.kind.value);
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  }

  form.addEventListener("input", onChange);
  form.addEventListener("change", onChange);
  var previewAs = document.getElementById("preview_reminder");
  if (previewAs) { previewAs.addEventListener("change", onChange); }
  refresh();
})();
