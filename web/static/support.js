/*
 * AF's chat-konsol (the supporter console). Polls the queue and the chosen
 * conversation every 1.5 s. All text from leaders and the bot is inserted with
 * textContent, never as HTML. Every POST carries the session's CSRF token.
 */
(function () {
  "use strict";

  var POLL_MS = 1500;
  var main = document.getElementById("main");
  var csrf = main.getAttribute("data-csrf");
  var $ = function (id) { return document.getElementById(id); };
  var selected = null;        // handoff id shown on the right
  var shownEntries = 0;       // transcript entries already rendered
  var current = null;         // last handoff JSON for the selected chat
  var queueItems = {};        // id -> li
  var lastQueueText = "";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "className") node.className = attrs[k]; else node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function waited(seconds) {
    if (seconds < 60) return seconds + " sek.";
    var minutes = Math.floor(seconds / 60);
    return minutes + " min.";
  }

  function clock(ts) {
    if (!ts) return "";
    var d = new Date(ts * 1000);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }

  function request(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method === "POST") {
      options.headers["X-CSRF-Token"] = csrf;
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    return fetch(url, options).then(function (r) {
      if (r.status === 401) { window.location.assign("/support/login"); throw new Error("Log ind igen."); }
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var failure = new Error(data.error || ("Fejl " + r.status));
          failure.status = r.status;
          throw failure;
        }
        return data;
      });
    });
  }

  function say(text) { $("conversation-status").textContent = text || ""; }

  // ---- the queue -----------------------------------------------------------
  function describe(h) {
    var state = h.status === "waiting" ? "Venter " + waited(h.waiting_seconds)
      : (h.mine ? "Hos dig" : "Hos " + h.supporter_name);
    return { state: state, who: h.leader_name + (h.leader_institution ? ", " + h.leader_institution : "") };
  }

  function renderQueue(data) {
    var list = $("queue");
    var seen = {};
    var waiting = 0;
    data.handoffs.forEach(function (h) {
      seen[h.id] = true;
      if (h.status === "waiting") waiting += 1;
      var d = describe(h);
      var li = queueItems[h.id];
      if (!li) {
        li = el("li", { className: "queue-item" });
        var button = el("button", { type: "button", className: "queue-open", "data-id": String(h.id) });
        button.appendChild(el("span", { className: "who" }));
        button.appendChild(el("span", { className: "topic" }));
        button.appendChild(el("span", { className: "state" }));
        button.addEventListener("click", function () { select(h.id, true); });
        li.appendChild(button);
        list.appendChild(li);
        queueItems[h.id] = li;
      }
      var b = li.firstChild;
      b.querySelector(".who").textContent = d.who;
      b.querySelector(".topic").textContent = "Spørger om: " + h.topic;
      b.querySelector(".state").textContent = d.state;
      li.className = "queue-item " + h.status + (h.id === selected ? " selected" : "");
      if (h.id === selected) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
    });
    Object.keys(queueItems).forEach(function (id) {
      if (!seen[id]) { queueItems[id].remove(); delete queueItems[id]; }
    });
    var text = waiting === 0 ? "Ingen ledere venter lige nu."
      : (waiting === 1 ? "1 leder venter." : waiting + " ledere venter.");
    if (text !== lastQueueText) { $("queue-status").textContent = text; lastQueueText = text; }
  }

  function pollQueue() {
    request("GET", "/support/api/queue").then(renderQueue, function (err) {
      $("queue-status").textContent = "Køen kunne ikke hentes: " + err.message;
    });
  }

  // ---- one conversation ----------------------------------------------------------
  function select(id, moveFocus) {
    if (selected !== id) {
      selected = id;
      shownEntries = 0;
      current = null;
      $("transcript").textContent = "";
      say("");
    }
    pollConversation().then(function () {
      if (moveFocus) $("conversation-title").focus();
    });
  }

  function renderInfo(h) {
    var info = $("conversation-info");
    info.textContent = "";
    [["Leder", h.leader_name], ["Institution", h.leader_institution || "Ikke oplyst"],
     ["E-mail", h.leader_email || "Ikke oplyst"], ["Spørger om", h.topic],
     ["Ventetid", waited(h.waiting_seconds)]].forEach(function (pair) {
      info.appendChild(el("dt", null, pair[0]));
      info.appendChild(el("dd", null, pair[1]));
    });
    info.hidden = false;
  }

  function renderTranscript(entries) {
    var log = $("transcript");
    log.hidden = false;
    if (entries.length < shownEntries) { log.textContent = ""; shownEntries = 0; }
    for (var i = shownEntries; i < entries.length; i++) {
      var e = entries[i];
      var li = el("li", { className: "entry " + e.who });
      if (e.who !== "system") {
        var head = el("p", { className: "meta" });
        head.appendChild(el("span", { className: "name" }, e.name));
        head.appendChild(document.createTextNode(" " + clock(e.at)));
        li.appendChild(head);
      }
      li.appendChild(el("p", { className: "text" }, e.text));
      log.appendChild(li);
    }
    if (entries.length > shownEntries) log.scrollTop = log.scrollHeight;
    shownEntries = entries.length;
  }

  function renderControls(h) {
    $("controls").hidden = false;
    var waiting = h.status === "waiting";
    $("take").hidden = !waiting;
    $("reply").hidden = !h.mine;
    $("finish").hidden = !h.mine;
    if (!waiting && !h.mine) {
      say(h.status === "active" ? "Samtalen er hos " + h.supporter_name + "."
        : "Samtalen er afsluttet." + (h.case_reference ? " Sag: " + h.case_reference : ""));
    }
  }

  function pollConversation() {
    if (selected === null) return Promise.resolve();
    var id = selected;
    return request("GET", "/support/api/handoffs/" + id).then(function (data) {
      if (id !== selected) return;
      var h = data.handoff;
      current = h;
      $("conversation-title").textContent = "Samtale med " + h.leader_name;
      renderInfo(h);
      renderTranscript(data.transcript);
      renderControls(h);
    }, function (err) {
      if (id !== selected) return;
      if (err.status === 403 || err.status === 404) {
        // Taken by someone else, ended or gone: only waiting chats and your own can be read.
        $("transcript").textContent = "";
        $("transcript").hidden = true;
        $("conversation-info").hidden = true;
        $("controls").hidden = true;
        shownEntries = 0;
        current = null;
      }
      say(err.message);
    });
  }

  function act(path, body, done) {
    if (selected === null) return Promise.resolve();
    return request("POST", "/support/api/handoffs/" + selected + "/" + path, body).then(function (data) {
      if (done) done(data);
      return pollConversation();
    }, function (err) { say(err.message); });
  }

  $("take").addEventListener("click", function () {
    act("take", {}, function () { say("Du har overtaget samtalen."); }).then(function () {
      if (current && current.mine) $("reply-text").focus();
    });
  });

  $("reply").addEventListener("submit", function (event) {
    event.preventDefault();
    var box = $("reply-text");
    var text = box.value.trim();
    if (!text) return;
    act("messages", { text: text }, function () { box.value = ""; say("Beskeden er sendt."); }).then(function () {
      box.focus();
    });
  });

  $("reply-text").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("reply").requestSubmit();
    }
  });

  $("hand-back").addEventListener("click", function () {
    act("return", {}, function () { say("Samtalen er givet tilbage til AF-assistenten."); });
  });

  $("close").addEventListener("submit", function (event) {
    event.preventDefault();
    var body = { create_case: $("close-case").checked, note: $("close-note").value };
    act("close", body, function (data) {
      $("close-note").value = "";
      say("Samtalen er afsluttet." + (data.case_reference ? " Sag oprettet: " + data.case_reference + "."
        : (data.case_error ? " " + data.case_error : "")));
    });
  });

  // ---- audit log -----------------------------------------------------------------
  var ACTIONS = { take: "overtog", "return": "gav tilbage", close: "afsluttede", timeout: "ingen nåede",
    requested: "bad om en medarbejder", login: "loggede ind", logout: "loggede ud",
    login_failed: "forkert login", no_supporter: "ingen i chatten",
    session_revoked: "blev logget ud (ikke længere medarbejder)" };

  function pollAudit() {
    if (!$("audit-details").open) return;
    request("GET", "/support/api/audit").then(function (data) {
      var list = $("audit");
      list.textContent = "";
      data.entries.forEach(function (e) {
        var d = new Date(e.at * 1000);
        var line = d.toLocaleString("da-DK") + " – " + (e.supporter || "systemet") + " " +
          (ACTIONS[e.action] || e.action) + (e.handoff_id ? " (chat " + e.handoff_id + ")" : "") +
          (e.detail ? " – " + e.detail : "");
        list.appendChild(el("li", null, line));
      });
    }, function () { /* shown next time */ });
  }
  $("audit-details").addEventListener("toggle", pollAudit);

  function tick() {
    pollQueue();
    pollConversation();
  }
  tick();
  window.setInterval(tick, POLL_MS);
  window.setInterval(pollAudit, 10000);
})();
