/* The customer's page (/r/<token>): record a video in the page, or pick one, and upload it
 * in resumable chunks (tus, vendor/tus.min.js) while the customer writes the rest.
 *
 * Without this script the page is a plain form that posts the file itself; with it, the
 * file input loses its name once the video goes up by tus, and the form posts only the
 * upload's id. A recording is also kept in IndexedDB until it is sent, so a reload (or a
 * phone that drops the tab) resumes its upload instead of losing it.
 */
(function () {
  "use strict";

  var form = document.getElementById("testimonial-form");
  if (!form) return;

  var $ = function (id) { return document.getElementById(id); };
  var maxSeconds = parseInt(form.dataset.maxSeconds, 10) || 90;
  var maxBytes = parseInt(form.dataset.maxBytes, 10) || 0;
  var maxMb = form.dataset.maxMb;
  var endpoint = form.dataset.uploadEndpoint;
  var token = form.dataset.token;
  // A chunk per PATCH: a dropped connection costs at most one chunk. Tests set it smaller.
  var chunkSize = parseInt(form.dataset.chunkSize || window.localStorage.getItem("testimonial-chunk-size") || "", 10)
    || 5 * 1024 * 1024;

  var recorderBox = $("recorder"), fallback = $("fallback"), stage = $("stage");
  var preview = $("preview"), playback = $("playback"), timer = $("timer");
  var recordButton = $("record-button"), stopButton = $("stop-button"), againButton = $("again-button");
  var statusLine = $("recorder-status"), fileInput = $("video"), uploadIdInput = $("upload_id");
  var progressBox = $("upload-progress"), progressBar = $("progress-bar"), progressText = $("progress-text");
  var retryButton = $("retry-upload"), submitButton = $("submit-button"), submitStatus = $("submit-status");

  var stream = null, recorder = null, chunks = [], startedAt = 0, tick = null, playbackUrl = null;
  var upload = null, uploading = false, submitWhenDone = false, currentFile = null;

  // -- what the browser can record -----------------------------------------------------
  // Safari records MP4 (H.264/AAC); Chrome and Firefox WebM; Chrome 126+ MP4 too. The
  // order says what we prefer: WebM first where both work (smaller, better supported by
  // Chrome's recorder), MP4 for Safari.
  var TYPES = ["video/webm;codecs=vp9,opus", "video/webm;codecs=vp8,opus", "video/webm",
               "video/mp4;codecs=avc1,mp4a", "video/mp4"];

  function recordingType() {
    if (!window.MediaRecorder || typeof MediaRecorder.isTypeSupported !== "function") return "";
    for (var i = 0; i < TYPES.length; i++) {
      if (MediaRecorder.isTypeSupported(TYPES[i])) return TYPES[i];
    }
    return "";
  }

  function canRecord() {
    return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
  }

  function say(text) { statusLine.textContent = text; }

  function showFallback(reason) {
    recorderBox.hidden = true;
    fallback.hidden = false;
    if (reason) $("fallback-reason").textContent = reason;
    $("picker-or").hidden = true;
    $("video-label").textContent = "Record with your phone's camera app, or choose a video";
  }

  function formatTime(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    return Math.floor(seconds / 60) + ":" + ("0" + (seconds % 60)).slice(-2);
  }

  function stopCamera() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    preview.srcObject = null;
  }

  // -- recording ----------------------------------------------------------------------
  function startCamera() {
    return navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: { echoCancellation: true, noiseSuppression: true }
    }).then(function (s) {
      stream = s;
      stage.hidden = false;
      playback.hidden = true;
      preview.hidden = false;
      preview.classList.add("mirror");
      preview.srcObject = s;
      var played = preview.play();
      if (played && played.catch) played.catch(function () {});
    });
  }

  function startRecording() {
    var type = recordingType();
    try {
      recorder = type ? new MediaRecorder(stream, { mimeType: type, videoBitsPerSecond: 2500000 })
                      : new MediaRecorder(stream);
    } catch (e) {
      stopCamera();
      showFallback("Your browser cannot record video here, so please choose a video instead, or open the link in another browser.");
      return;
    }
    chunks = [];
    recorder.ondataavailable = function (event) {
      // Stopping on a slice boundary can hand over an empty last chunk: never keep one.
      if (event.data && event.data.size > 0) chunks.push(event.data);
    };
    recorder.onstop = finishRecording;
    // A timeslice of 1 s: Safari refuses smaller ones (and gives empty blobs for some), and
    // long recordings without one have come back empty on iPhones.
    recorder.start(1000);
    startedAt = Date.now();
    recorderBox.classList.add("recording");
    recordButton.hidden = true;
    againButton.hidden = true;
    stopButton.hidden = false;
    stopButton.focus();
    say("Recording… press Stop when you are done.");
    timer.textContent = "0:00";
    tick = window.setInterval(function () {
      var elapsed = (Date.now() - startedAt) / 1000;
      timer.textContent = formatTime(elapsed);
      if (elapsed >= maxSeconds) stopRecording();
    }, 250);
  }

  function stopRecording() {
    if (tick) window.clearInterval(tick);
    tick = null;
    if (recorder && recorder.state !== "inactive") recorder.stop();
  }

  function finishRecording() {
    recorderBox.classList.remove("recording");
    stopButton.hidden = true;
    var type = (recorder.mimeType || recordingType() || "video/webm").split(";")[0];
    stopCamera();
    if (!chunks.length) {
      recordButton.hidden = false;
      say("Nothing was recorded. Please try again.");
      return;
    }
    var extension = type.indexOf("mp4") >= 0 ? "mp4" : "webm";
    var file = new File(chunks, "recording." + extension, { type: type, lastModified: Date.now() });
    chunks = [];
    showRecording(file);
    againButton.hidden = false;
    say("Recorded " + timer.textContent + ". You can watch it, record again, or send it.");
    keepRecording(file);
    fileInput.value = "";
    startUpload(file);
  }

  function showRecording(file) {
    if (playbackUrl) URL.revokeObjectURL(playbackUrl);
    playbackUrl = URL.createObjectURL(file);
    stage.hidden = false;
    preview.hidden = true;
    playback.hidden = false;
    playback.src = playbackUrl;
  }

  recordButton.addEventListener("click", function () {
    recordButton.disabled = true;
    say("Turning on your camera…");
    var ready = stream ? Promise.resolve() : startCamera();
    ready.then(function () {
      recordButton.disabled = false;
      startRecording();
    }).catch(function (error) {
      recordButton.disabled = false;
      stopCamera();
      var denied = error && (error.name === "NotAllowedError" || error.name === "SecurityError");
      showFallback(denied
        ? "We could not use your camera (permission was refused), so please choose a video instead, or allow the camera and reload."
        : "We could not find a camera to record with, so please choose a video instead, or switch to your phone.");
    });
  });

  stopButton.addEventListener("click", stopRecording);

  againButton.addEventListener("click", function () {
    cancelUpload();
    forgetRecording();
    playback.removeAttribute("src");
    playback.load();
    againButton.hidden = true;
    recordButton.hidden = false;
    say("Turning on your camera…");
    recordButton.disabled = true;
    startCamera().then(function () {
      recordButton.disabled = false;
      say("Ready. Press Record to start.");
      recordButton.focus();
    }).catch(function () {
      recordButton.disabled = false;
      showFallback("We could not use your camera, so please choose a video instead.");
    });
  });

  // -- picking a file -----------------------------------------------------------------
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    if (!file) return;
    if (file.type && file.type.indexOf("video/") !== 0) {
      progressBox.hidden = true;
      window.alert("Please choose a video file.");
      fileInput.value = "";
      return;
    }
    forgetRecording();
    againButton.hidden = !canRecord();
    startUpload(file);
  });

  // -- resumable upload (tus) ----------------------------------------------------------
  function setProgress(sent, total) {
    var percent = total ? Math.floor((sent / total) * 100) : 0;
    progressBar.value = percent;
    progressBar.textContent = percent + " %";
    progressText.textContent = percent + " %";
  }

  function cancelUpload() {
    if (upload) {
      var old = upload;
      upload = null;
      old.abort(true).catch(function () {}); // true: also DELETE it on the server
    }
    uploading = false;
    currentFile = null;
    uploadIdInput.value = "";
    progressBox.hidden = true;
  }

  function startUpload(file) {
    cancelUpload();
    if (maxBytes && file.size > maxBytes) {
      progressBox.hidden = false;
      progressText.textContent = "This video is larger than " + maxMb + " MB. Please record a shorter one.";
      return;
    }
    if (!window.tus || !window.tus.isSupported) {
      return; // the plain form posts the file itself
    }
    currentFile = file;
    // The form now carries the upload's id instead of the file.
    fileInput.removeAttribute("name");
    progressBox.hidden = false;
    retryButton.hidden = true;
    progressText.classList.remove("done");
    setProgress(0, file.size);
    uploading = true;
    var mine = new tus.Upload(file, {
      endpoint: endpoint,
      chunkSize: chunkSize,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata: { filename: file.name || "recording", filetype: file.type || "" },
      // The link's token is in the endpoint: the same file on the same link resumes.
      fingerprint: function (f) {
        return Promise.resolve(["testimonial", token, f.name, f.type, f.size, f.lastModified].join("-"));
      },
      removeFingerprintOnSuccess: false,
      onProgress: function (sent, total) { if (upload === mine) setProgress(sent, total); },
      onError: function (error) {
        if (upload !== mine) return;
        uploading = false;
        var status = error && error.originalResponse ? error.originalResponse.getStatus() : 0;
        var body = error && error.originalResponse ? error.originalResponse.getBody() : "";
        if (status === 413 || status === 415 || status === 409 || status === 410) {
          progressText.textContent = (body || "The video was refused.").trim();
          submitWhenDone = false;
          submitButton.disabled = false;
          return;
        }
        progressText.textContent = "The upload stopped (your connection may have dropped). It will go on from where it stopped.";
        retryButton.hidden = false;
      },
      onSuccess: function () {
        if (upload !== mine) return;
        uploading = false;
        var id = mine.url.split("/").pop();
        uploadIdInput.value = id;
        setProgress(file.size, file.size);
        progressText.textContent = "100 % — your video is uploaded.";
        progressText.classList.add("done");
        if (submitWhenDone) {
          submitWhenDone = false;
          sendForm();
        }
      }
    });
    upload = mine;
    mine.findPreviousUploads().then(function (previous) {
      if (upload !== mine) return;
      if (previous.length) mine.resumeFromPreviousUpload(previous[0]);
      mine.start();
    });
  }

  retryButton.addEventListener("click", function () {
    if (!upload) return;
    retryButton.hidden = true;
    uploading = true;
    progressText.textContent = "Trying again…";
    upload.start();
  });

  window.addEventListener("online", function () {
    if (upload && !uploading && !uploadIdInput.value) {
      retryButton.hidden = true;
      uploading = true;
      upload.start();
    }
  });

  // -- keeping a recording across a reload (IndexedDB) ---------------------------------
  function db() {
    return new Promise(function (resolve, reject) {
      if (!window.indexedDB) return reject(new Error("no IndexedDB"));
      var open = indexedDB.open("testimonial-recordings", 1);
      open.onupgradeneeded = function () { open.result.createObjectStore("recordings"); };
      open.onsuccess = function () { resolve(open.result); };
      open.onerror = function () { reject(open.error); };
    });
  }

  function keepRecording(file) {
    db().then(function (store) {
      store.transaction("recordings", "readwrite").objectStore("recordings").put(file, token);
    }).catch(function () {});
  }

  function forgetRecording() {
    db().then(function (store) {
      store.transaction("recordings", "readwrite").objectStore("recordings").delete(token);
    }).catch(function () {});
  }

  function restoreRecording() {
    return db().then(function (store) {
      return new Promise(function (resolve) {
        var get = store.transaction("recordings").objectStore("recordings").get(token);
        get.onsuccess = function () { resolve(get.result || null); };
        get.onerror = function () { resolve(null); };
      });
    }).catch(function () { return null; });
  }

  // -- sending the form ----------------------------------------------------------------
  function sendForm() {
    submitButton.disabled = true; // one submission, however often it is pressed
    submitStatus.textContent = "Sending…";
    forgetRecording();
    HTMLFormElement.prototype.submit.call(form);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!$("consent").checked) {
      submitStatus.textContent = "Please tick the box to let us share your testimonial.";
      $("consent").focus();
      return;
    }
    if (recorder && recorder.state === "recording") {
      submitStatus.textContent = "Please stop the recording first.";
      return;
    }
    if (uploading || (upload && !uploadIdInput.value)) {
      submitWhenDone = true;
      submitButton.disabled = true;
      submitStatus.textContent = "Your video is still uploading — we'll send everything as soon as it reaches 100 %.";
      if (!uploading) retryButton.click();
      return;
    }
    if (!uploadIdInput.value && !$("text").value.trim() && !(fileInput.files && fileInput.files.length)) {
      submitStatus.textContent = "Please record or choose a video, or write a few words.";
      return;
    }
    sendForm();
  });

  // -- start -----------------------------------------------------------------------------
  $("copy-link").addEventListener("click", function () {
    var link = form.dataset.link;
    var done = function () { $("copy-status").textContent = "Link copied. Paste it into your browser's address bar."; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(link).then(done, function () { window.prompt("Copy this link:", link); });
    } else {
      window.prompt("Copy this link:", link);
    }
  });

  if (canRecord() && (window.isSecureContext !== false)) {
    recorderBox.hidden = false;
    $("picker-or").hidden = false;
    $("video-label").textContent = "Choose a video you already have";
  } else {
    showFallback(null);
  }

  restoreRecording().then(function (file) {
    if (!file || uploadIdInput.value) return;
    showRecording(file);
    againButton.hidden = !canRecord();
    recordButton.hidden = true;
    say("Your recording from before is still here; its upload goes on from where it stopped.");
    startUpload(file);
  });
})();
