/*
 * AF-assistentens chat widget. Vanilla JS on socket.io-client (served by our
 * own server as /static/vendor/socket.io.min.js). No framework, no external
 * requests. See docs/kkintra-embed.md.
 *
 * Embedding (the script tag's data attributes):
 *   data-socket-url      Rasa server, e.g. https://af-assistent.kk.dk
 *   data-socket-path     default "/socket.io/"
 *   data-identity-token  signed identity token (JWT) from the intranet, or
 *   data-token-url       same-origin URL on the intranet returning {"token": "..."}
 *   data-init-payload    sent once when a new conversation starts (default "/greet")
 *   data-title           heading of the chat panel
 *   data-autostart       "false" to start from script: AFChat.start({token: ...})
 *
 * Security: bot and user text is only ever inserted with textContent /
 * createTextNode, never innerHTML. Links are built as elements and only
 * http(s), mailto and tel addresses become links.
 */
(function () {
  "use strict";

  var T = {
    open: "Chat med AF-assistenten",
    close: "Luk chatten",
    label: "Din besked",
    placeholder: "Skriv din besked…",
    send: "Send",
    log: "Samtale med AF-assistenten",
    you: "Du skrev:",
    bot: "AF-assistenten skrev:",
    choices: "Svarmuligheder",
    connecting: "Forbinder…",
    offline: "Forbindelsen er afbrudt – prøver igen…",
    notSent: "Beskeden er ikke sendt, fordi forbindelsen er afbrudt. Prøv igen om lidt.",
    refused: "Du skal være logget ind på KKintra for at bruge chatten. Genindlæs siden.",
    noToken: "Chatten kunne ikke finde dit login fra KKintra. Genindlæs siden.",
    newWindow: "(åbner i et nyt vindue)",
    chattingAs: "Du chatter som ",
    masked: "[CPR-nummer fjernet]"
  };
  // The wording comes from domain/channel.yml (utter_widget_*), filled in by the web server that
  // serves this file (web/leader_page.py), so AF's trainers change it where they change every
  // other sentence. The texts above are used only where this file is served without it.
  var FROM_DOMAIN = /*AF_CHAT_TEXTS*/null;
  if (FROM_DOMAIN) {
    Object.keys(FROM_DOMAIN).forEach(function (key) {
      if (typeof FROM_DOMAIN[key] === "string" && key !== "masked") T[key] = FROM_DOMAIN[key];
    });
  }
  var STORE_KEY = "afChat.v1";
  var MAX_STORED = 200;
  // Display-side masking of what the leader typed (the server masks for real), so the
  // raw number never reaches the page or sessionStorage. Wider than the server on purpose:
  // no date check, any separator, full-width digits and invisible characters included.
  var INVISIBLE_RE = /[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]/g;
  var CPR_SEP = "[\\s._/\\-\\u2010-\\u2014\\u2212]{0,3}";
  var CPR_RE = new RegExp("(^|[^0-9])(\\d{2})" + CPR_SEP + "(\\d{2})" + CPR_SEP + "(\\d{2})" + CPR_SEP +
                          "(\\d{4})(?![0-9])", "g");
  function maskCpr(text) {
    var plain = String(text).normalize ? String(text).normalize("NFKC").replace(INVISIBLE_RE, "") : String(text);
    CPR_RE.lastIndex = 0;
    if (!CPR_RE.test(plain)) return String(text);
    CPR_RE.lastIndex = 0;
    return plain.replace(CPR_RE, function (_m, before) { return before + T.masked; });
  }

  var script = document.currentScript;
  var state = loadState();
  var socket = null;
  var opts = {};
  var ui = null;

  function loadState() {
    try {
      var raw = window.sessionStorage.getItem(STORE_KEY);
      var parsed = raw ? JSON.parse(raw) : null;
      if (parsed && typeof parsed === "object" && Array.isArray(parsed.messages)) return parsed;
    } catch (e) { /* storage blocked or corrupt: start fresh */ }
    return { sessionId: null, who: null, open: false, messages: [] };
  }

  function saveState() {
    state.messages = state.messages.slice(-MAX_STORED);
    try { window.sessionStorage.setItem(STORE_KEY, JSON.stringify(state)); } catch (e) { /* ignore */ }
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        if (key === "className") node.className = attrs[key];
        else node.setAttribute(key, attrs[key]);
      });
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function tokenClaims(token) {
    // For display only ("Du chatter som …"); the server verifies the signature.
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      while (part.length % 4) part += "=";
      var json = decodeURIComponent(Array.prototype.map.call(window.atob(part), function (c) {
        return "%" + ("00" + c.charCodeAt(0).toString(16)).slice(-2);
      }).join(""));
      return JSON.parse(json);
    } catch (e) { return null; }
  }

  // ---- building the widget ------------------------------------------------
  function build() {
    var root = document.getElementById("af-chat") || document.body.appendChild(el("div", { id: "af-chat" }));
    root.classList.add("afchat");
    root.textContent = "";

    var launcher = el("button", { type: "button", className: "afchat-launcher", "aria-expanded": "false", "aria-controls": "afchat-panel" }, T.open);
    var panel = el("section", { id: "afchat-panel", className: "afchat-panel", "aria-labelledby": "afchat-title" });
    panel.hidden = true;

    var header = el("div", { className: "afchat-header" });
    var titles = el("div");
    titles.appendChild(el("h2", { id: "afchat-title", className: "afchat-title" }, opts.title || "AF-assistenten"));
    var who = el("p", { className: "afchat-who" });
    titles.appendChild(who);
    var closeBtn = el("button", { type: "button", className: "afchat-close", "aria-label": T.close, title: T.close }, "×");
    header.appendChild(titles);
    header.appendChild(closeBtn);

    var status = el("p", { className: "afchat-status", role: "status", "aria-live": "polite" });
    var log = el("ol", { className: "afchat-log", role: "log", "aria-live": "polite", "aria-label": T.log, tabindex: "0" });

    var form = el("form", { className: "afchat-form" });
    var label = el("label", { "for": "afchat-input", className: "afchat-visually-hidden" }, T.label);
    var input = el("input", { id: "afchat-input", className: "afchat-input", type: "text", autocomplete: "off", placeholder: T.placeholder, maxlength: "4000" });
    var sendBtn = el("button", { type: "submit", className: "afchat-send" }, T.send);
    form.appendChild(label);
    form.appendChild(input);
    form.appendChild(sendBtn);

    panel.appendChild(header);
    panel.appendChild(status);
    panel.appendChild(log);
    panel.appendChild(form);
    root.appendChild(panel);
    root.appendChild(launcher);

    launcher.addEventListener("click", function () { setOpen(panel.hidden, true); });
    closeBtn.addEventListener("click", function () { setOpen(false, true); });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); setOpen(false, true); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      if (sendText(text, text)) input.value = "";
    });

    ui = { root: root, launcher: launcher, panel: panel, who: who, status: status, log: log, input: input };
  }

  function setOpen(open, moveFocus) {
    ui.panel.hidden = !open;
    ui.launcher.setAttribute("aria-expanded", open ? "true" : "false");
    ui.launcher.textContent = open ? T.close : T.open;
    state.open = open;
    saveState();
    if (moveFocus) (open ? ui.input : ui.launcher).focus();
    if (open) scrollDown();
  }

  function setStatus(text) { ui.status.textContent = text || ""; }

  function scrollDown() { ui.log.scrollTop = ui.log.scrollHeight; }

  // ---- rendering messages ----------------------------------------------------
  var LINK_RE = /\[([^\]\n]{1,200})\]\(([^)\s]{1,2000})\)|((?:https?:\/\/|mailto:)[^\s<>"')\]]+)/g;

  function safeHref(url) {
    var trimmed = String(url).trim();
    if (/^(https?:|mailto:|tel:)/i.test(trimmed)) return trimmed;
    if (/^\/(?!\/)/.test(trimmed)) return trimmed;
    return null;
  }

  function appendLink(parent, label, url) {
    var href = safeHref(url);
    if (!href) { parent.appendChild(document.createTextNode(label)); return; }
    var a = el("a", { href: href }, label);
    if (/^https?:/i.test(href)) {
      a.setAttribute("target", "_blank");
      a.setAttribute("rel", "noopener noreferrer");
      a.appendChild(el("span", { className: "afchat-visually-hidden" }, " " + T.newWindow));
    }
    parent.appendChild(a);
  }

  function renderText(parent, text) {
    String(text).split(/\n/).forEach(function (line, index) {
      if (index > 0) parent.appendChild(el("br"));
      var last = 0;
      var match;
      LINK_RE.lastIndex = 0;
      while ((match = LINK_RE.exec(line)) !== null) {
        if (match.index > last) parent.appendChild(document.createTextNode(line.slice(last, match.index)));
        if (match[1] !== undefined) appendLink(parent, match[1], match[2]);
        else {
          var url = match[3].replace(/[.,;:!?]+$/, "");
          appendLink(parent, url, url);
          if (url.length < match[3].length) parent.appendChild(document.createTextNode(match[3].slice(url.length)));
        }
        last = LINK_RE.lastIndex;
      }
      if (last < line.length) parent.appendChild(document.createTextNode(line.slice(last)));
    });
  }

  function renderMessage(message, index) {
    var item = el("li", { className: "afchat-msg afchat-" + message.from });
    if (message.from === "person") {
      // An AF supporter has taken over: show who is writing, visibly and to screen readers.
      item.appendChild(el("span", { className: "afchat-author" }, message.author + ":"));
    } else {
      item.appendChild(el("span", { className: "afchat-visually-hidden" }, message.from === "user" ? T.you : T.bot));
    }
    var bubble = el("div", { className: "afchat-bubble" });
    renderText(bubble, message.text || "");
    item.appendChild(bubble);
    if (message.buttons && message.buttons.length && !message.used) {
      var group = el("div", { className: "afchat-buttons", role: "group", "aria-label": T.choices });
      message.buttons.forEach(function (button) {
        var b = el("button", { type: "button", className: "afchat-choice" }, button.title);
        b.addEventListener("click", function () {
          if (sendText(button.payload, button.title)) ui.input.focus();
        });
        group.appendChild(b);
      });
      item.appendChild(group);
    }
    ui.log.appendChild(item);
    scrollDown();
  }

  function addMessage(message) {
    state.messages.push(message);
    saveState();
    renderMessage(message, state.messages.length - 1);
  }

  function renderAll() {
    ui.log.textContent = "";
    state.messages.forEach(renderMessage);
  }

  // ---- talking to the server --------------------------------------------------
  function customData() { return { identity_token: opts.token || "" }; }

  function sendText(payload, shown) {
    if (!socket || !socket.connected || !state.sessionId) { setStatus(T.notSent); return false; }
    socket.emit("user_uttered", { message: payload, session_id: state.sessionId, customData: customData() });
    if (shown !== null) retireButtons();
    if (shown !== null) addMessage({ from: "user", text: maskCpr(shown) });
    return true;
  }

  function retireButtons() {
    // Once the leader has answered, older choices go away (fewer tab stops, no stale clicks).
    state.messages.forEach(function (m) { if (m.buttons && m.buttons.length) m.used = true; });
    saveState();
    Array.prototype.forEach.call(ui.log.querySelectorAll(".afchat-buttons"), function (g) { g.remove(); });
  }

  function onBotMessage(data) {
    if (!data || typeof data !== "object") return;
    var buttons = [];
    var raw = data.quick_replies || data.buttons || [];
    if (Array.isArray(raw)) {
      raw.forEach(function (b) {
        if (b && typeof b.title === "string" && typeof b.payload === "string") buttons.push({ title: b.title, payload: b.payload });
      });
    }
    var text = typeof data.text === "string" ? data.text : "";
    if (!text && data.attachment && data.attachment.payload && typeof data.attachment.payload.src === "string") {
      text = data.attachment.payload.src;
    }
    if (!text && !buttons.length) return;
    if (data.sender_role === "af_supporter" && typeof data.sender_label === "string" && typeof data.message === "string") {
      addMessage({ from: "person", author: data.sender_label, text: data.message, buttons: buttons });
      return;
    }
    addMessage({ from: "bot", text: text, buttons: buttons });
  }

  function connect() {
    if (typeof window.io !== "function") { setStatus(T.offline); return; }
    setStatus(T.connecting);
    socket = window.io(opts.socketUrl, {
      path: opts.socketPath,
      auth: function (cb) { cb({ token: opts.token || "" }); },
      reconnectionDelayMax: 10000
    });
    socket.on("connect", function () {
      setStatus("");
      socket.emit("session_request", { session_id: state.sessionId, customData: customData() });
    });
    socket.on("session_confirm", function (sessionId) {
      var fresh = sessionId !== state.sessionId;
      if (fresh) {
        state.sessionId = sessionId;
        state.messages = [];
        saveState();
        renderAll();
        if (opts.initPayload) sendText(opts.initPayload, null);
      }
    });
    socket.on("bot_uttered", onBotMessage);
    socket.on("disconnect", function (reason) {
      setStatus(T.offline);
      if (reason === "io server disconnect") socket.connect();
    });
    socket.on("connect_error", function (err) {
      if (socket.active) { setStatus(T.offline); return; }
      // Refused by the server (no valid identity): say so, do not retry blindly.
      setStatus((err && err.message && !/^(xhr|websocket|timeout)/i.test(err.message)) ? err.message : T.refused);
    });
  }

  function showWho() {
    var claims = opts.token ? tokenClaims(opts.token) : null;
    ui.who.textContent = claims && claims.name ? T.chattingAs + claims.name + (claims.institution ? " (" + claims.institution + ")" : "") : "";
    return claims;
  }

  function fetchToken(url) {
    return window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (body) { return body && typeof body.token === "string" ? body.token : ""; });
  }

  function start(options) {
    options = options || {};
    opts.token = options.token || opts.token || "";
    if (!ui) build();
    var claims = showWho();
    var who = claims && claims.email ? claims.email : null;
    if (state.who !== who) {
      // Another leader in this tab: never show or continue someone else's conversation.
      state = { sessionId: null, who: who, open: state.open, messages: [] };
      saveState();
    }
    renderAll();
    if (options.open || state.open) setOpen(true, !!options.open);
    if (socket) { socket.disconnect(); socket = null; }
    connect();
  }

  function readConfig() {
    var d = (script && script.dataset) || {};
    opts.socketUrl = d.socketUrl || window.location.origin;
    opts.socketPath = d.socketPath || "/socket.io/";
    opts.title = d.title || "AF-assistenten";
    opts.initPayload = d.initPayload === undefined ? "/greet" : d.initPayload;
    opts.token = d.identityToken || "";
    opts.tokenUrl = d.tokenUrl || "";
    return d.autostart !== "false";
  }

  window.AFChat = { start: start, open: function () { if (ui) setOpen(true, true); } };

  var autostart = readConfig();
  if (!autostart) return;
  if (opts.tokenUrl) {
    fetchToken(opts.tokenUrl).then(function (token) { start({ token: token }); }, function () {
      start({});
      setStatus(T.noToken);
    });
  } else {
    start({});
  }
})();
