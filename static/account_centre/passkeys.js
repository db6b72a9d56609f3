// Passkeys (WebAuthn): turns the server's JSON options into the browser's call and back.
// No inline script (the CSP forbids it): the page's data-* attributes carry the URLs.
(function () {
  "use strict";

  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: body === undefined ? "{}" : JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        if (response.status === 403 && data.reauth) {
          // The sign-in is too old for this change: confirm it is you, then come back.
          window.location.assign(data.reauth);
          return new Promise(function () {});
        }
        if (!response.ok) { throw new Error(data.error || response.statusText); }
        return data;
      });
    });
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return {type: item.type, id: fromB64url(item.id), transports: item.transports};
    });
  }

  function register(box) {
    var error = box.querySelector(".passkey-error");
    error.hidden = true;
    post(box.dataset.options, box.dataset.csrf).then(function (options) {
      options.challenge = fromB64url(options.challenge);
      options.user.id = fromB64url(options.user.id);
      options.excludeCredentials = descriptors(options.excludeCredentials);
      return navigator.credentials.create({publicKey: options});
    }).then(function (credential) {
      return post(box.dataset.verify, box.dataset.csrf, {
        id: credential.id, rawId: toB64url(credential.rawId), type: credential.type,
        response: {
          clientDataJSON: toB64url(credential.response.clientDataJSON),
          attestationObject: toB64url(credential.response.attestationObject),
          transports: credential.response.getTransports ? credential.response.getTransports() : []
        }
      });
    }).then(function (result) {
      if (result.recovery_codes && result.recovery_codes.length) {
        var list = document.getElementById("passkey-recovery-codes");
        result.recovery_codes.forEach(function (code) {
          var item = document.createElement("li"), text = document.createElement("code");
          text.textContent = code; item.appendChild(text); list.appendChild(item);
        });
        document.getElementById("passkey-recovery").hidden = false;
        document.getElementById("passkey-done").href = result.next;
      } else {
        window.location.assign(result.next);
      }
    }).catch(function (problem) {
      error.hidden = false;
      error.textContent = error.dataset.message + (problem && problem.message ? " (" + problem.message + ")" : "");
    });
  }

  function authenticate(box) {
    var error = document.getElementById("passkey-error");
    error.hidden = true;
    post(box.dataset.options, box.dataset.csrf).then(function (options) {
      options.challenge = fromB64url(options.challenge);
      options.allowCredentials = descriptors(options.allowCredentials);
      return navigator.credentials.get({publicKey: options});
    }).then(function (assertion) {
      var r = assertion.response;
      return post(box.dataset.verify + "?next=" + encodeURIComponent(box.dataset.next), box.dataset.csrf, {
        id: assertion.id, rawId: toB64url(assertion.rawId), type: assertion.type,
        response: {
          clientDataJSON: toB64url(r.clientDataJSON),
          authenticatorData: toB64url(r.authenticatorData),
          signature: toB64url(r.signature),
          userHandle: r.userHandle ? toB64url(r.userHandle) : null
        }
      });
    }).then(function (result) {
      window.location.assign(result.next);
    }).catch(function () { error.hidden = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var enrol = document.getElementById("passkey-enrol");
    if (enrol) {
      enrol.querySelector("button").addEventListener("click", function () { register(enrol); });
    }
    var step = document.getElementById("passkey-step");
    if (step) {
      document.getElementById("use-passkey").addEventListener("click", function () { authenticate(step); });
    }
  });
})();
