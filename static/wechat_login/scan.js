// The scan box of the login page: show a fresh mini-program code, long-poll its ticket's status
// (one request open at a time), and sign in once the mini-program confirms.
(function () {
  'use strict';
  var box = document.getElementById('wechat-scan');
  if (!box) return;
  var image = document.getElementById('wechat-scan-code');
  var text = document.getElementById('wechat-scan-status');
  var renew = document.getElementById('wechat-scan-renew');
  var form = document.getElementById('wechat-scan-finish');
  var FINAL = { refused: true, expired: true, used: true, unknown: true };
  var generation = 0;

  function show(status) {
    box.setAttribute('data-status', status);
    var message = box.getAttribute('data-msg-' + status);
    if (message) text.textContent = message;
    renew.hidden = !(FINAL[status] || status === 'unavailable');
  }

  function later(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function poll(mine, seen) {
    if (mine !== generation) return;
    var url = box.getAttribute('data-status-url') + '?seen=' + encodeURIComponent(seen);
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (response) {
        if (response.status === 429 || response.status >= 500) {
          return later(response.status === 429 ? 2000 : 5000).then(function () { poll(mine, seen); });
        }
        return response.json().then(function (body) {
          var status = response.ok ? body.status : 'expired';
          if (mine !== generation) return;
          show(status);
          if (status === 'confirmed') { form.submit(); return; }
          if (FINAL[status]) return;
          var pause = body.retry_after ? body.retry_after * 1000 : 0;
          return later(pause).then(function () { poll(mine, status); });
        });
      })
      .catch(function () { return later(3000).then(function () { poll(mine, seen); }); });
  }

  function load() {
    generation += 1;
    var mine = generation;
    var url = box.getAttribute('data-code-url');
    image.onload = function () { show('waiting'); poll(mine, 'waiting'); };
    image.onerror = function () { if (mine === generation) show('unavailable'); };
    image.src = url + (url.indexOf('?') < 0 ? '?' : '&') + 'n=' + mine;
  }

  renew.addEventListener('click', load);
  load();
})();
