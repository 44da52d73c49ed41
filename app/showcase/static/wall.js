/* The wall inside its iframe: a card's video loads only when its play button is pressed,
   and the page tells the widget on the shop's page how tall it is. No cookies, no storage. */
(function () {
  'use strict';
  var frame = document.body.getAttribute('data-frame') || '';

  function play(link) {
    var media = link.parentNode;
    var video = document.createElement('video');
    video.controls = true;
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute('playsinline', '');
    video.preload = 'auto';
    if (link.getAttribute('data-poster')) { video.poster = link.getAttribute('data-poster'); }
    video.src = link.getAttribute('data-video');
    media.innerHTML = '';
    media.appendChild(video);
    var started = video.play();
    if (started && started.catch) { started.catch(function () { /* autoplay refused: the controls remain */ }); }
    video.focus();
  }

  document.addEventListener('click', function (event) {
    var link = event.target.closest ? event.target.closest('a.play') : null;
    if (!link || !link.getAttribute('data-video')) { return; }
    event.preventDefault();
    play(link);
  });

  var last = 0;
  function report() {
    var height = Math.ceil(document.documentElement.scrollHeight);
    if (height === last || window.parent === window) { return; }
    last = height;
    // The height is not a secret: any page that frames the wall may know it.
    window.parent.postMessage({ type: 'testimonials:height', frame: frame, height: height }, '*');
  }
  if (window.ResizeObserver) { new ResizeObserver(report).observe(document.documentElement); }
  window.addEventListener('load', report);
  document.addEventListener('loadedmetadata', report, true);
  report();
}());
