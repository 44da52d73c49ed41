/* Testimonials widget. Paste on any page:
     <div data-testimonials data-product-id="PRODUCT"></div>
     <script src="https://YOUR-APP/embed/widget.js" async></script>
   Optional attributes: data-theme="light|dark|auto", data-min-rating="4", data-has-video="true",
   data-campaign-id="1", data-limit="12". Each div becomes an iframe of /embed/wall whose
   height follows its content. */
(function () {
  'use strict';
  var script = document.currentScript || (function () {
    var all = document.querySelectorAll('script[src*="/embed/widget.js"]');
    return all[all.length - 1];
  }());
  if (!script) { return; }
  var base = new URL(script.src, document.baseURI);
  var origin = base.origin;
  var OPTIONS = { productId: 'product_id', campaignId: 'campaign_id', minRating: 'min_rating',
                  hasVideo: 'has_video', limit: 'limit', theme: 'theme' };
  var frames = {};
  var counter = 0;

  function mount(div) {
    if (div.getAttribute('data-testimonials-mounted')) { return; }
    div.setAttribute('data-testimonials-mounted', '1');
    var id = 'tw' + (++counter) + '-' + Math.random().toString(36).slice(2, 8);
    var url = new URL('/embed/wall', origin);
    Object.keys(OPTIONS).forEach(function (key) {
      var value = div.dataset[key];
      if (value) { url.searchParams.set(OPTIONS[key], value); }
    });
    url.searchParams.set('frame', id);
    var iframe = document.createElement('iframe');
    iframe.src = url.toString();
    iframe.title = div.getAttribute('data-title') || 'Customer testimonials';
    iframe.loading = 'lazy';
    iframe.setAttribute('scrolling', 'no');
    iframe.style.width = '100%';
    iframe.style.border = '0';
    iframe.style.display = 'block';
    iframe.style.height = '420px';
    iframe.style.overflow = 'hidden';
    iframe.setAttribute('allow', 'autoplay; fullscreen');
    iframe.setAttribute('allowfullscreen', '');
    frames[id] = iframe;
    div.appendChild(iframe);
  }

  window.addEventListener('message', function (event) {
    if (event.origin !== origin || !event.data || event.data.type !== 'testimonials:height') { return; }
    var iframe = frames[event.data.frame];
    if (!iframe || iframe.contentWindow !== event.source) { return; }
    var height = Number(event.data.height);
    if (height > 0 && height < 100000) { iframe.style.height = height + 'px'; }
  });

  function mountAll() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-testimonials]'), mount);
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', mountAll);
  } else {
    mountAll();
  }
}());
