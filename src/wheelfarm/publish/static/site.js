// Small helpers for every page, written for plain browsers (no framework, no build step).
// - Elements of class "origin" show this site's scheme and host, so the commands people copy
//   carry the right address without the pages knowing it.
// - Blocks marked data-copy get a "Copy" button.
(function () {
  "use strict";
  var origin = window.location.origin;
  document.querySelectorAll(".origin").forEach(function (element) {
    element.textContent = origin;
  });
  if (!navigator.clipboard) {
    return;
  }
  document.querySelectorAll("[data-copy]").forEach(function (block) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(block.textContent).then(function () {
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
      }, function () {
        button.textContent = "Copy failed";
      });
    });
    (block.parentElement || block).insertAdjacentElement("afterend", button);
  });
})();

// A link to a release's files opens its collapsed <details> block.
(function () {
  "use strict";
  function openTarget() {
    var id = window.location.hash.slice(1);
    var target = id && document.getElementById(id);
    if (target && target.tagName === "DETAILS") {
      target.open = true;
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
