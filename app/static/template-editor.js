// Template editor: live preview from the server and a live SMS counter.
// The counter mirrors app/campaigns/sms.py (keep the two in step).
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form) { return; }
  var editor = document.getElementById("template-editor");
  var GSM7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM7_EXT = "^{}\\[~]|€\f";

  function smsCount(text) {
    var chars = Array.from(text || "");
    var nonGsm = [];
    chars.forEach(function (c) {
      if (GSM7.indexOf(c) < 0 && GSM7_EXT.indexOf(c) < 0 && nonGsm.indexOf(c) < 0) { nonGsm.push(c); }
    });
    var encoding = nonGsm.length ? "UCS-2" : "GSM-7";
    var sizes = chars.map(function (c) {
      if (encoding === "GSM-7") { return GSM7_EXT.indexOf(c) >= 0 ? 2 : 1; }
      return c.codePointAt(0) > 0xFFFF ? 2 : 1;
    });
    var single = encoding === "GSM-7" ? 160 : 70, multi = encoding === "GSM-7" ? 153 : 67;
    var units = sizes.reduce(function (a, b) { return a + b; }, 0);
    var result = {encoding: encoding, characters: chars.length, units: units, non_gsm: nonGsm};
    if (units === 0) { return Object.assign(result, {segments: 0, per_segment: single, remaining: single}); }
    if (units <= single) { return Object.assign(result, {segments: 1, per_segment: single, remaining: single - units}); }
    var segments = 1, used = 0;
    sizes.forEach(function (size) {
      if (used + size > multi) { segments += 1; used = 0; }
      used += size;
    });
    return Object.assign(result, {segments: segments, per_segment: multi, remaining: multi - used});
  }

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
    if (data.sms) { showCount(document.getElementById("sms-counter"), data.sms); }
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
    editor.classList.remove("channel-email", "channel-sms");
    editor.classList.add("channel-" + channel);
    showCount(document.getElementById("sms-counter-live"), smsCount(form.elements.text.value));
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  }

  form.addEventListener("input", onChange);
  form.addEventListener("change", onChange);
  showCount(document.getElementById("sms-counter-live"), smsCount(form.elements.text.value));
  refresh();
})();
