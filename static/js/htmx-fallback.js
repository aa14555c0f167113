// If the CDN copy of htmx did not load (offline, blocked), load the vendored copy.
(function () {
  if (window.htmx) return;
  var me = document.currentScript;
  var script = document.createElement("script");
  script.src = me.getAttribute("data-src");
  document.head.appendChild(script);
})();
