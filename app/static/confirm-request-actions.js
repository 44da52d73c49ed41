// Requests Log actions (form.js-confirm): ask first, and tell the server the merchant
// confirmed (a hidden confirmed=yes), so a post without it gets the confirmation page.
document.querySelectorAll('form.js-confirm').forEach(function (form) {
  form.addEventListener('submit', function (event) {
    if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
    if (!form.querySelector('input[name=confirmed]')) {
      var input = document.createElement('input');
      input.type = 'hidden'; input.name = 'confirmed'; input.value = 'yes';
      form.appendChild(input);
    }
  });
});
