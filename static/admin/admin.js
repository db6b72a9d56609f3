// The menu is open by default (it works without script); on a phone-sized screen it starts
// folded, and a link followed from it folds it again.
(function () {
  "use strict";
  var menu = document.querySelector("details.menu");
  if (!menu) { return; }
  var narrow = window.matchMedia("(max-width: 759px)");
  function fit() { menu.open = !narrow.matches; }
  fit();
  narrow.addEventListener("change", fit);
})();
