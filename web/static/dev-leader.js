/* Development mode only: pick a demo leader; the server signs their identity
 * token with the development key (POST /dev/token) and the chat starts. */
(function () {
  "use strict";
  var KEY = "afChat.devLeader";
  var form = document.getElementById("demo-login");
  var select = document.getElementById("demo-leader");
  var status = document.getElementById("demo-status");
  if (!form || !select || !window.AFChat) return;

  function begin(index, openChat) {
    return window.fetch("/dev/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ leader: Number(index) })
    }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    }).then(function (body) {
      try { window.sessionStorage.setItem(KEY, String(index)); } catch (e) { /* ignore */ }
      status.textContent = "Du er nu " + body.name + " (" + body.institution + ").";
      window.AFChat.start({ token: body.token, open: openChat });
    }).catch(function () {
      status.textContent = "Der kunne ikke laves et demo-login. Er serveren startet i udviklingstilstand?";
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    begin(select.value, true);
  });

  var saved = null;
  try { saved = window.sessionStorage.getItem(KEY); } catch (e) { /* ignore */ }
  if (saved !== null && select.querySelector('option[value="' + Number(saved) + '"]')) {
    select.value = String(Number(saved));
    begin(saved, false);
  }
})();
