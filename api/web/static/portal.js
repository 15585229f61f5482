/* The portal's only script, loaded from /static (the Content-Security-Policy allows no inline
   script). After a search the results start below the fold on a phone: move the focus, and so
   the view and a screen reader, to the element marked data-focus-on-load (the results'
   heading, tabindex="-1"), at the top of the screen. Without the script, its autofocus
   attribute does the focusing. */
(function () {
  "use strict";
  function focusResults() {
    var target = document.querySelector("[data-focus-on-load]");
    if (!target) {
      return;
    }
    try {
      target.focus({ preventScroll: true });
    } catch (e) {
      target.focus();
    }
    target.scrollIntoView({ block: "start" });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusResults);
  } else {
    focusResults();
  }
})();
