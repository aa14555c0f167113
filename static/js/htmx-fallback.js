// If the CDN copy of htmx did not load (offline, blocked), load the vendored copy — as a parser-blocking
// script written into the page, so it runs before DOMContentLoaded like the CDN copy would have.
// (A script added with createElement runs whenever it arrives; if that is after DOMContentLoaded but
// before the page has finished loading, htmx waits for a DOMContentLoaded that never comes, and the
// page's hx- attributes do nothing.)
(function () {
  if (window.htmx) return;
  var src = document.currentScript.getAttribute("data-src");
  document.write('<script src="' + src + '"><\/script>');
})();
