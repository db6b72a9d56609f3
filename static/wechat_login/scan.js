// The scan box of the login page: show a fresh mini-program code, long-poll its ticket's status
// (one request open at a time). Once the mini-program confirms, show which account confirmed and
// let the person continue or cancel: signing in by itself would sign this browser in as whoever
// scanned the code on its screen (login CSRF, RFC 6749 §10.12).
(function () {
  'use strict';
  var box = document.getElementById('wechat-scan');
  if (!box) return;
  var codeBox = document.getElementById('wechat-scan-code-box');
  var text = document.getElementById('wechat-scan-status');
  var renew = document.getElementById('wechat-scan-renew');
  var who = document.getElementById('wechat-scan-who');
  var FINAL = { refused: true, cancelled: true, expired: true, used: true, unknown: true };
  var generation = 0;

  function show(status, account) {
    box.setAttribute('data-status', status);
    var message = box.getAttribute('data-msg-' + status);
    if (message) text.textContent = message;
    renew.hidden = !(FINAL[status] || status === 'unavailable');
    who.hidden = !(status === 'confirmed' && account);
    if (!who.hidden) showAccount(account);
  }

  function showAccount(account) {
    var phone = document.getElementById('wechat-scan-phone');
    var nickname = document.getElementById('wechat-scan-nickname');
    var avatar = document.getElementById('wechat-scan-avatar');
    phone.textContent = account.phone || '';
    nickname.textContent = account.nickname || '';
    if (!account.phone && !account.nickname) nickname.textContent = box.getAttribute('data-msg-nameless');
    while (avatar.firstChild) avatar.removeChild(avatar.firstChild);
    if (account.picture) {  // no <img> without a source
      var picture = new Image(40, 40);
      picture.alt = avatar.getAttribute('data-alt');
      picture.referrerPolicy = 'no-referrer';
      picture.onerror = function () { if (picture.parentNode) picture.parentNode.removeChild(picture); };
      picture.src = account.picture;
      avatar.appendChild(picture);
    }
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
          // Confirmed by an account that can no longer sign in (disabled since): nothing to offer.
          if (status === 'confirmed' && !body.account) status = 'expired';
          if (mine !== generation) return;
          show(status, body.account);
          if (FINAL[status]) return;
          var pause = body.retry_after ? body.retry_after * 1000 : 0;
          return later(pause).then(function () { poll(mine, status); });
        });
      })
      .catch(function () { return later(3000).then(function () { poll(mine, seen); }); });
  }

  function setCode(image) {
    var old = document.getElementById('wechat-scan-code');
    if (old) old.parentNode.removeChild(old);
    if (image) codeBox.insertBefore(image, renew);
  }

  function load() {
    generation += 1;
    var mine = generation;
    var url = box.getAttribute('data-code-url');
    var image = new Image(215, 215);
    image.id = 'wechat-scan-code';
    image.alt = codeBox.getAttribute('data-alt');
    image.onload = function () {
      if (mine !== generation) return;
      setCode(image);
      show('waiting');
      poll(mine, 'waiting');
    };
    image.onerror = function () {
      if (mine !== generation) return;
      setCode(null);
      show('unavailable');
    };
    image.src = url + (url.indexOf('?') < 0 ? '?' : '&') + 'n=' + mine;
  }

  renew.addEventListener('click', load);
  load();
})();
