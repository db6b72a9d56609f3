// The captcha step before an SMS code is sent: loads Tencent Captcha's script (or the fake's),
// shows the challenge, and on success fills the ticket fields and submits the form.
(function () {
  "use strict";
  var box = document.getElementById("captcha");
  var start = document.getElementById("captcha-start");
  if (!box || !start) { return; }
  var form = box.closest("form");

  function done(result) {
    if (!result || result.ret !== 0 || !result.ticket) { return; }
    form.querySelector("input[name=captcha_ticket]").value = result.ticket;
    form.querySelector("input[name=captcha_randstr]").value = result.randstr || "";
    form.submit();
  }

  function show() {
    new window.TencentCaptcha(box.getAttribute("data-app-id"), done, {}).show();
  }

  start.addEventListener("click", function () {
    if (window.TencentCaptcha) { show(); return; }
    var script = document.createElement("script");
    script.src = box.getAttribute("data-script");
    script.onload = show;
    document.head.appendChild(script);
  });
}());
