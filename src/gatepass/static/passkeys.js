/* Passkeys (WebAuthn) on the sign-in, second-step and account pages.
 *
 * A static file under the strict Content-Security-Policy (script-src 'self'):
 * no inline script, no library, no CDN.  The server sends WebAuthn options
 * as JSON with binary members in base64url; they are turned into the
 * ArrayBuffers navigator.credentials wants here, and the credential back
 * into JSON.  Each page marks what it offers with data attributes; without
 * WebAuthn those parts stay hidden and the page's forms work as before.
 */
(function () {
  "use strict";

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return { type: c.type, id: toBuffer(c.id), transports: c.transports };
    });
  }

  function creationOptions(o) {
    o.challenge = toBuffer(o.challenge);
    o.user.id = toBuffer(o.user.id);
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return o;
  }

  function requestOptions(o) {
    o.challenge = toBuffer(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return o;
  }

  function credentialJSON(credential) {
    var r = credential.response;
    var out = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toText(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      out.response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return out;
  }

  function csrfToken() {
    var field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function post(url, body) {
    return window.fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrfToken() },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) {
          var error = new Error(json.detail || "The request failed.");
          error.code = json.error;
          throw error;
        }
        return json;
      });
    });
  }

  function say(text) {
    var box = document.getElementById("passkey-message");
    if (box) {
      box.textContent = text;
      box.hidden = false;
    }
  }

  function failed(error) {
    if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
      say("The passkey request was cancelled or timed out. Try again.");
    } else if (error && error.name === "InvalidStateError") {
      say("This passkey is already registered to your account.");
    } else {
      say((error && error.code && error.message) || "That passkey could not be used. Try again.");
    }
  }

  function busy(button, on) {
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  function signIn(area) {
    var button = area.querySelector("button");
    button.addEventListener("click", function () {
      busy(button, true);
      var remember = document.querySelector('input[name="remember"]');
      post("/auth/passkeys/login/options")
        .then(function (options) {
          return navigator.credentials.get({ publicKey: requestOptions(options) });
        })
        .then(function (credential) {
          return post("/auth/passkeys/login", {
            credential: credentialJSON(credential),
            remember: !!(remember && remember.checked)
          });
        })
        .then(function () {
          window.location.assign(area.getAttribute("data-next") || "/account");
        })
        .catch(function (error) {
          busy(button, false);
          failed(error);
        });
    });
  }

  function secondStep(area) {
    var button = area.querySelector("button");
    var form = document.getElementById("passkey-second-step-form");
    button.addEventListener("click", function () {
      busy(button, true);
      post("/auth/passkeys/login/options", { second_step: true })
        .then(function (options) {
          return navigator.credentials.get({ publicKey: requestOptions(options) });
        })
        .then(function (credential) {
          form.elements.passkey.value = JSON.stringify(credentialJSON(credential));
          form.submit();
        })
        .catch(function (error) {
          busy(button, false);
          if (error && error.code === "invalid_mfa_token") {
            window.location.assign("/login?restart=1");
            return;
          }
          failed(error);
        });
    });
  }

  function register(form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      var name = form.elements.name.value;
      busy(button, true);
      post("/auth/passkeys/register/options")
        .then(function (options) {
          return navigator.credentials.create({ publicKey: creationOptions(options) });
        })
        .then(function (credential) {
          return post("/auth/passkeys/register", {
            credential: credentialJSON(credential),
            name: name
          });
        })
        .then(function () {
          window.location.assign("/account?passkey=added");
        })
        .catch(function (error) {
          busy(button, false);
          failed(error);
        });
    });
  }

  function start() {
    var supported = !!(window.PublicKeyCredential && navigator.credentials && window.fetch);
    var parts = document.querySelectorAll("[data-passkey]");
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i];
      var kind = part.getAttribute("data-passkey");
      if (kind === "unsupported") {
        part.hidden = supported;
        continue;
      }
      if (!supported) {
        continue;
      }
      part.hidden = false;
      if (kind === "login") {
        signIn(part);
      } else if (kind === "second-step") {
        secondStep(part);
      } else if (kind === "register") {
        register(part);
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
