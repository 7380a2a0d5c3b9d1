// hybrid-host console: refreshes the page's content every few seconds and
// says so plainly when the service cannot be reached or the session ended.
// Loaded from /console/static/console.js (the CSP allows no inline script).
(function () {
  "use strict";
  var PERIOD_MS = 2000;
  var page = document.body.getAttribute("data-page");
  var content = document.getElementById("content");
  var banner = document.getElementById("banner");
  var updated = document.getElementById("updated");
  if (!page || !content || !banner) {
    return;
  }
  var failingSince = null;

  function show(message, kind) {
    banner.textContent = message;
    banner.className = "banner " + kind;
    banner.hidden = false;
    document.body.classList.add("stale");
  }

  function clear() {
    banner.hidden = true;
    banner.textContent = "";
    document.body.classList.remove("stale");
    failingSince = null;
  }

  function refresh() {
    fetch("/console/fragment/" + encodeURIComponent(page), {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Accept": "text/html" }
    }).then(function (resp) {
      if (resp.status === 401) {
        show("Your console session has ended. Run `hybrid-host console-link` for a new sign-in link; the data below is no longer updated.", "expired");
        return null;
      }
      if (!resp.ok) {
        throw new Error("the service answered " + resp.status);
      }
      return resp.text();
    }).then(function (html) {
      if (html === null) {
        return;
      }
      content.innerHTML = html;
      if (updated) {
        updated.textContent = new Date().toLocaleTimeString();
      }
      clear();
      setTimeout(refresh, PERIOD_MS);
    }).catch(function (err) {
      if (failingSince === null) {
        failingSince = new Date();
      }
      show("The hybrid-host service is unreachable since " + failingSince.toLocaleTimeString() +
        " (" + err.message + "); retrying. The data below may be out of date.", "unreachable");
      setTimeout(refresh, PERIOD_MS);
    });
  }

  setTimeout(refresh, PERIOD_MS);
})();
