/*
 * The trainer's workbench (Træn AF-assistenten). Vanilla JS, no dependencies.
 * Every text from leaders, the model or the files is inserted with textContent, never as HTML.
 * Every POST carries the session's CSRF token. Tabs follow the WAI-ARIA tabs pattern.
 */
(function () {
  "use strict";

  var main = document.getElementById("main");
  var csrf = main.getAttribute("data-csrf");
  var $ = function (id) { return document.getElementById(id); };
  var catalogue = { intents: [], forms: [], faqs: [], responses: [] };
  var choices = {};           // option label -> {kind, target}
  var polling = null;         // training poll timer
  var servingPoll = null;     // poll until the running assistant uses the model in service
  var editing = null;         // {kind, id, hash}; a new entry: {kind, id: null, isNew: true}
  var stopping = false;       // a stop of the training was asked for and is under way
  var counter = 0;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "className") node.className = attrs[k];
      else if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
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
          failure.data = data;
          throw failure;
        }
        return data;
      });
    });
  }

  function when(ts) {
    if (!ts) return "";
    return new Date(ts * 1000).toLocaleString("da-DK", { dateStyle: "short", timeStyle: "short" });
  }

  function pct(x) { return Math.round(x * 100) + " %"; }

  // ---- tabs ------------------------------------------------------------------------
  var tabs = Array.prototype.slice.call(document.querySelectorAll('[role="tab"]'));
  function selectTab(tab, focus) {
    tabs.forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    });
    if (focus) tab.focus();
    var key = tab.id.replace("tab-", "");
    if (key === "log") loadAudit();
    if (key === "serving") loadServing();
    if (window.history && window.history.replaceState) window.history.replaceState(null, "", "#" + key);
  }
  tabs.forEach(function (tab, index) {
    tab.addEventListener("click", function () { selectTab(tab, false); });
    tab.addEventListener("keydown", function (event) {
      var next = null;
      if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
      else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
      else if (event.key === "Home") next = tabs[0];
      else if (event.key === "End") next = tabs[tabs.length - 1];
      if (next) { event.preventDefault(); selectTab(next, true); }
    });
  });
  function tabFor(key) { return $("tab-" + key); }

  // ---- the catalogue to choose from ----------------------------------------------------
  function buildChoices() {
    var list = el("datalist", { id: "choices" });
    choices = {};
    function add(label, kind, target) {
      choices[label] = { kind: kind, target: target };
      list.appendChild(el("option", { value: label }));
    }
    catalogue.forms.forEach(function (f) { add("Blanket: " + f.title + " (" + f.id + ")", "form", f.id); });
    catalogue.faqs.forEach(function (f) { add("Regelsvar: " + f.title + " (" + f.id + ")", "faq", f.id); });
    catalogue.intents.forEach(function (i) { add("Intent: " + i.title + " (" + i.id + ")", "intent", i.id); });
    var old = $("choices");
    if (old) old.remove();
    main.appendChild(list);
  }

  function resolveChoice(value) {
    value = (value || "").trim();
    if (choices[value]) return { kind: choices[value].kind, target: choices[value].target, label: value };
    var matches = Object.keys(choices).filter(function (label) {
      return label.toLowerCase().indexOf("(" + value.toLowerCase() + ")") !== -1;
    });
    if (matches.length !== 1) return null;
    return { kind: choices[matches[0]].kind, target: choices[matches[0]].target, label: matches[0] };
  }

  // ---- review ------------------------------------------------------------------------
  var REASONS = {};

  $("review-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var status = $("review-status");
    status.textContent = "Henter beskederne …";
    $("review-groups").textContent = "";
    request("GET", "/support/api/traener/review?days=" + encodeURIComponent($("review-days").value)).then(function (data) {
      REASONS = data.reasons || {};
      var n = 0;
      data.groups.forEach(function (g) { n += g.messages.length; });
      var c = data.counts || {};
      status.textContent = "Gennemgået " + data.conversations + " samtaler fra de sidste " + data.days + " dage. " +
        (n === 0 ? "Der er intet at gennemgå lige nu." :
          n + " forskellige beskeder i " + data.groups.length + " grupper: " +
          (c.fallback || 0) + " ikke forstået, " + (c.low_confidence || 0) + " usikre, " +
          (c.handoff || 0) + " før en medarbejder, " + (c.abandoned || 0) + " opgivet midt i, " +
          (c.not_helped || 0) + " hvor svaret ikke hjalp.");
      data.groups.forEach(renderGroup);
    }, function (err) { status.textContent = err.message; });
  });

  function renderGroup(group) {
    var li = el("li", { className: "group" });
    var count = group.messages.reduce(function (sum, m) { return sum + m.count; }, 0);
    li.appendChild(el("h3", null, "Gruppe " + group.group + " · " + (count === 1 ? "1 besked" : count + " beskeder")));
    var list = el("ul", { className: "messages" });
    group.messages.forEach(function (m) { list.appendChild(renderMessage(m)); });
    li.appendChild(list);
    $("review-groups").appendChild(li);
  }

  function describeDecision(d) {
    if (!d) return "";
    var what = { intent: "sat til intenten " + d.target, form: "sat til blanketten " + d.target,
      faq: "sat til regelsvaret " + d.target, ignore: "sprunget over", note: "sendt til katalogejeren" }[d.kind] || d.kind;
    return "Allerede gennemgået: " + what + " af " + d.by + " " + when(d.at) + ".";
  }

  function renderMessage(m) {
    counter += 1;
    var id = "m" + counter;
    var item = el("li", { className: "message" + (m.decision ? " decided" : "") });
    var card = el("article", { "aria-labelledby": id + "-text" });
    var quote = el("p", { className: "leader-text", id: id + "-text" });
    quote.appendChild(el("span", { className: "visually-hidden" }, "Lederen skrev: "));
    quote.appendChild(document.createTextNode(m.text));
    card.appendChild(quote);
    var meta = el("p", { className: "meta" });
    meta.textContent = "Skrevet " + (m.count === 1 ? "1 gang" : m.count + " gange") + " i " +
      (m.senders === 1 ? "1 samtale" : m.senders + " samtaler") + ", senest " + when(m.latest) + ". " +
      "Med, fordi: " + m.reasons.map(function (r) { return REASONS[r] || r; }).join(", ") + ". " +
      "Assistenten troede: " + (m.predicted || "ingenting") + " (sikkerhed " + pct(m.confidence) + ").";
    card.appendChild(meta);
    var decided = el("p", { className: "decision", id: id + "-decision" }, describeDecision(m.decision));
    card.appendChild(decided);
    var show = el("button", { type: "button", className: "secondary link-button" }, "Se hele samtalen");
    show.addEventListener("click", function () { openConversation(m.ref, show); });
    card.appendChild(show);

    var form = el("form", { className: "annotate", "aria-label": "Din beslutning om beskeden" });
    form.appendChild(el("label", { "for": id + "-example" }, "Tekst til eksemplet (du må rette stavefejl)"));
    var example = el("input", { id: id + "-example", type: "text", maxlength: "500" });
    example.value = m.text;
    form.appendChild(example);
    form.appendChild(el("label", { "for": id + "-choice" }, "Hvad handler beskeden om? Søg en intent, blanket eller et regelsvar"));
    var choice = el("input", { id: id + "-choice", type: "search", list: "choices", autocomplete: "off",
      "aria-describedby": id + "-status" });
    form.appendChild(choice);
    var buttons = el("div", { className: "row" });
    var add = el("button", { type: "submit" }, "Tilføj som eksempel");
    var ignore = el("button", { type: "button", className: "secondary" }, "Ignorér");
    var missing = el("button", { type: "button", className: "secondary", "aria-expanded": "false",
      "aria-controls": id + "-note-box" }, "Mangler i kataloget");
    buttons.appendChild(add);
    buttons.appendChild(ignore);
    buttons.appendChild(missing);
    form.appendChild(buttons);
    var noteBox = el("div", { id: id + "-note-box", className: "note-box" });
    noteBox.hidden = true;
    noteBox.appendChild(el("label", { "for": id + "-note" }, "Hvilken blanket eller hvilket svar mangler? (til katalogejeren)"));
    var note = el("textarea", { id: id + "-note", rows: "2", maxlength: "1000" });
    noteBox.appendChild(note);
    var sendNote = el("button", { type: "button" }, "Send ønsket");
    noteBox.appendChild(sendNote);
    form.appendChild(noteBox);
    var status = el("div", { id: id + "-status", className: "status", role: "status", "aria-live": "polite" });
    form.appendChild(status);
    card.appendChild(form);
    item.appendChild(card);

    var confirm = false;
    function say(text, warnings) {
      status.textContent = "";
      if (text) status.appendChild(el("p", null, text));
      if (warnings && warnings.length) {
        var list = el("ul", { className: "warnings" });
        warnings.forEach(function (w) { list.appendChild(el("li", null, w)); });
        status.appendChild(list);
      }
    }
    function done(result) {
      item.classList.add("decided");
      decided.textContent = result.message;
      say("");
      add.textContent = "Tilføj som eksempel";
      confirm = false;
    }
    choice.addEventListener("change", function () {
      var picked = resolveChoice(choice.value);
      confirm = false;
      add.textContent = "Tilføj som eksempel";
      if (!picked) { say(choice.value ? "Vælg en af mulighederne på listen." : ""); return; }
      choice.value = picked.label;  // an id typed by hand is shown as what it means
      request("POST", "/support/api/traener/check", { text: example.value, kind: picked.kind, target: picked.target })
        .then(function (r) {
          if (r.conflict) say("Kan ikke tilføjes: «" + r.text + "» " + r.skip + ".");
          else if (r.skip) say("Bemærk: " + r.skip + ".");
          else say(r.warnings.length ? "Advarsel før du tilføjer:" : "Klar til at blive tilføjet som eksempel på " + r.label + ".", r.warnings);
        }, function (err) { say(err.message); });
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var picked = resolveChoice(choice.value);
      if (!picked) { say("Vælg først, hvad beskeden handler om."); choice.focus(); return; }
      request("POST", "/support/api/traener/annotate", { original: m.text, text: example.value, kind: picked.kind,
        target: picked.target, confirm: confirm }).then(function (r) {
        if (r.status === "needs_confirmation") {
          confirm = true;
          add.textContent = "Tilføj alligevel";
          say(r.message, r.warnings);
          add.focus();
          return;
        }
        done(r);
      }, function (err) { say(err.message); });
    });
    ignore.addEventListener("click", function () {
      request("POST", "/support/api/traener/annotate", { original: m.text, text: example.value, kind: "ignore" })
        .then(done, function (err) { say(err.message); });
    });
    missing.addEventListener("click", function () {
      noteBox.hidden = !noteBox.hidden;
      missing.setAttribute("aria-expanded", noteBox.hidden ? "false" : "true");
      if (!noteBox.hidden) note.focus();
    });
    sendNote.addEventListener("click", function () {
      request("POST", "/support/api/traener/annotate", { original: m.text, text: example.value, kind: "note",
        note: note.value }).then(function (r) { noteBox.hidden = true; missing.setAttribute("aria-expanded", "false"); done(r); },
        function (err) { say(err.message); });
    });
    return item;
  }

  var conversationOpener = null;
  function openConversation(ref, opener) {
    conversationOpener = opener;
    var box = $("conversation");
    var log = $("conversation-log");
    log.textContent = "";
    box.hidden = false;
    log.appendChild(el("li", { className: "entry system" }, "Henter samtalen …"));
    $("conversation-title").focus();
    request("GET", "/support/api/traener/conversation?ref=" + encodeURIComponent(ref)).then(function (data) {
      log.textContent = "";
      data.entries.forEach(function (e) {
        var li = el("li", { className: "entry " + e.who + (e.marked ? " marked" : "") });
        if (e.who !== "system") li.appendChild(el("p", { className: "meta" }, e.name + (e.marked ? " (beskeden fra gennemgangen)" : "")));
        li.appendChild(el("p", { className: "text" }, e.text));
        log.appendChild(li);
      });
    }, function (err) {
      log.textContent = "";
      log.appendChild(el("li", { className: "entry system" }, err.message));
    });
  }
  $("conversation-close").addEventListener("click", function () {
    $("conversation").hidden = true;
    if (conversationOpener) conversationOpener.focus();
  });

  // ---- train and compare ------------------------------------------------------------
  function renderJob(job) {
    var box = $("train-progress-box");
    var button = $("train-start");
    if (job.state === "none") { box.hidden = true; button.disabled = false; return; }
    box.hidden = job.state !== "running";
    button.disabled = job.state === "running";
    if (job.state !== "running") stopping = false;
    $("train-stop").disabled = stopping;
    $("train-progress").value = job.percent || 0;
    $("train-percent").textContent = Math.round(job.percent || 0) + " %";
    $("train-step").textContent = (job.message || "Træning") + " (" + Math.round(job.percent || 0) + " %)";
    var who = job.started_name ? " Startet af " + job.started_name + " " + when(job.started_at) + "." : "";
    if (job.state === "running" && stopping) $("train-status").textContent = "Stopper træningen …";
    else if (job.state === "running") $("train-status").textContent = "Træningen er i gang." + who + " Du kan godt lukke siden imens.";
    else if (job.state === "done") $("train-status").textContent = "Træningen er færdig." + who;
    else if (job.state === "failed") $("train-status").textContent = "Træningen stoppede: " + job.message;
    else if (job.state === "stopped") $("train-status").textContent = "Træningen blev stoppet" +
      (job.stopped_name ? " af " + job.stopped_name + " " + when(job.finished_at) : "") + "." + who +
      " Der er ikke kommet en ny model ud af den. Du kan starte en ny træning.";
  }

  function pollJob() {
    request("GET", "/support/api/traener/train").then(function (job) {
      renderJob(job);
      if (job.state === "running") {
        polling = window.setTimeout(pollJob, 2000);
      } else {
        polling = null;
        if (job.state === "done") loadComparison(true);
      }
    }, function (err) {
      $("train-status").textContent = err.message;
      polling = window.setTimeout(pollJob, 5000);
    });
  }

  $("train-start").addEventListener("click", function () {
    $("comparison").hidden = true;
    request("POST", "/support/api/traener/train", {}).then(function (job) {
      renderJob(job);
      if (!polling) pollJob();
    }, function (err) { $("train-status").textContent = err.message; });
  });

  $("train-stop").addEventListener("click", function () {
    stopping = true;
    $("train-stop").disabled = true;
    $("train-status").textContent = "Stopper træningen …";
    request("POST", "/support/api/traener/train/stop", {}).then(function (job) {
      renderJob(job);
      if (job.state === "done") loadComparison(true);
      else loadComparison(false);
      $("train-start").focus();
    }, function (err) {
      stopping = false;
      $("train-stop").disabled = false;
      $("train-status").textContent = err.message;
    });
  });

  function fmt(x) { return x === null || x === undefined ? "–" : x.toFixed(2).replace(".", ","); }

  var ANSWERS = { none: "intet fundet", fallback: "«det forstod jeg ikke»", request: "en bestilling",
    "forms:offered": "flere blanketter at vælge imellem", "faqs:offered": "flere regelsvar at vælge imellem" };
  function labelName(label) {
    if (ANSWERS[label]) return ANSWERS[label];
    if (label.indexOf("action:") === 0) return "et andet svar (" + label.slice(7) + ")";
    var parts = label.split(":");
    var kind = parts[0], id = parts.slice(1).join(":");
    var find = function (list) { for (var i = 0; i < list.length; i++) if (list[i].id === id) return list[i]; return null; };
    if (kind === "form") { var f = find(catalogue.forms); return "Blanket: " + (f ? f.title : id); }
    if (kind === "faq") { var q = find(catalogue.faqs); return "Regelsvar: " + (q ? q.title : id); }
    if (kind === "intent") return "Intent: " + id;
    return label;
  }

  var lastComparison = null;
  function loadComparison(focus) {
    return request("GET", "/support/api/traener/comparison").then(function (data) {
      lastComparison = data.comparison;
      if (!data.comparison) { $("comparison").hidden = true; return; }
      renderComparison(data.comparison);
      if (focus) $("comparison-title").focus();
    });
  }

  function renderComparison(c) {
    $("comparison").hidden = false;
    var verdict = $("verdict");
    verdict.textContent = "";
    verdict.className = "verdict " + (c.approved ? "good" : "bad");
    verdict.appendChild(el("p", { className: "verdict-head" }, c.approved ? "Den nye model kan sættes i drift." :
      (c.kind === "same_model" ? "Der er intet nyt at sætte i drift." : "Den nye model frarådes.")));
    c.lines.forEach(function (line) { verdict.appendChild(el("p", null, line)); });
    verdict.appendChild(el("p", { className: "meta" }, "Ny model: " + c.model + ". I drift: " + (c.in_service || "ingen") + "."));

    var sets = $("sets-table").querySelector("tbody");
    sets.textContent = "";
    (c.sets || []).forEach(function (s) {
      var tr = el("tr");
      tr.appendChild(el("th", { scope: "row" }, s.set));
      tr.appendChild(el("td", null, s.n));
      tr.appendChild(el("td", null, s.new_right + " (" + pct(s.new_right / s.n) + ")"));
      tr.appendChild(el("td", null, s.old_right === null ? "–" : s.old_right + " (" + pct(s.old_right / s.n) + ")"));
      sets.appendChild(tr);
    });
    var labels = $("labels-table").querySelector("tbody");
    labels.textContent = "";
    var changed = (c.labels || []).filter(function (l) { return l.change !== null && Math.abs(l.change) >= 0.005; });
    if (!changed.length) {
      var tr0 = el("tr");
      tr0.appendChild(el("td", { colspan: "5" }, "Ingen ændringer pr. intent, blanket eller regelsvar."));
      labels.appendChild(tr0);
    }
    changed.forEach(function (l) {
      var tr = el("tr", { className: l.change < 0 ? "worse" : "better" });
      tr.appendChild(el("th", { scope: "row" }, labelName(l.label)));
      tr.appendChild(el("td", null, l.support));
      tr.appendChild(el("td", null, fmt(l.new_f1)));
      tr.appendChild(el("td", null, fmt(l.old_f1)));
      tr.appendChild(el("td", null, (l.change > 0 ? "bedre " : "dårligere ") + fmt(Math.abs(l.change))));
      labels.appendChild(tr);
    });
    function list(id, rows, empty) {
      var ul = $(id);
      ul.textContent = "";
      if (!rows.length) ul.appendChild(el("li", null, empty));
      rows.slice(0, 60).forEach(function (r) {
        var li = el("li");
        li.appendChild(el("span", { className: "leader-text" }, r.text));
        li.appendChild(el("span", { className: "meta" }, " – skal være " + labelName(r.expected) + "; før: " +
          labelName(r.old) + "; nu: " + labelName(r.new)));
        ul.appendChild(li);
      });
      if (rows.length > 60) ul.appendChild(el("li", null, "… og " + (rows.length - 60) + " flere."));
    }
    list("better", c.better || [], "Ingen.");
    list("worse", c.worse || [], "Ingen.");

    var help = $("activate-help");
    var button = $("activate");
    $("reason-box").hidden = true;
    button.hidden = false;
    if (c.is_in_service) {
      help.textContent = "Den nye model er i drift.";
      button.hidden = true;
    } else if (c.kind === "same_model") {
      help.textContent = "Modellen er den samme som den i drift.";
      button.hidden = true;
    } else if (c.approved) {
      help.textContent = "Sammenligningen siger, at den nye model er mindst lige så god. Du kan sætte den i drift nu.";
      button.textContent = "Sæt i drift";
    } else {
      help.textContent = "Sammenligningen fraråder den nye model. Vil du alligevel sætte den i drift, skal du skrive hvorfor.";
      $("reason-box").hidden = false;
      button.textContent = "Sæt i drift alligevel";
    }
  }

  $("activate-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var reason = $("activate-reason").value;
    request("POST", "/support/api/traener/activate", { reason: reason }).then(function (r) {
      $("activate-help").textContent = r.message;
      $("activate").hidden = true;
      watchServing();
      loadServing();
    }, function (err) { $("activate-help").textContent = err.message; });
  });

  // ---- serving ---------------------------------------------------------------------
  function renderServing(s) {
    var info = $("serving-info");
    info.textContent = "";
    var rows = [["I drift", s.in_service || "ingen valgt endnu"], ["Forrige", s.previous || "ingen"],
      ["Den kørende assistent bruger", s.running || "svarer ikke lige nu"],
      ["Ny model", s.candidate ? s.candidate.model + (s.candidate.approved ? " (godkendt)" : " (frarådet)") : "ingen"]];
    rows.forEach(function (pair) {
      info.appendChild(el("dt", null, pair[0]));
      info.appendChild(el("dd", null, pair[1]));
    });
    $("rollback").disabled = !s.previous;
    var status = $("serving-status");
    if (s.in_service && s.running && s.in_service === s.running) {
      status.textContent = "Assistenten bruger modellen i drift.";
    } else if (s.in_service && s.running) {
      status.textContent = s.follows_pointer ? "Assistenterne skifter til " + s.in_service + " lige om lidt …" :
        "Den kørende assistent bruger en anden model end den i drift.";
    }
    if (!s.shared_models_dir) {
      status.textContent += " Bemærk: de kørende assistenter læser modellerne fra en anden mappe end træner-værktøjet.";
    }
    return s;
  }

  function loadServing() {
    return request("GET", "/support/api/traener/serving").then(renderServing, function (err) {
      $("serving-status").textContent = err.message;
    });
  }

  function watchServing() {
    if (servingPoll) window.clearTimeout(servingPoll);
    var tries = 0;
    function tick() {
      tries += 1;
      request("GET", "/support/api/traener/serving").then(function (s) {
        renderServing(s);
        if (s.in_service && s.running === s.in_service) {
          servingPoll = null;
          loadComparison(false).then(function () {
            $("activate-help").textContent = "Den nye model er i drift. Assistenten bruger nu " + s.in_service + ".";
          });
          return;
        }
        if (tries < 200) servingPoll = window.setTimeout(tick, 2000);
      }, function () { servingPoll = window.setTimeout(tick, 4000); });
    }
    tick();
  }

  $("rollback-form").addEventListener("submit", function (event) {
    event.preventDefault();
    request("POST", "/support/api/traener/rollback", { reason: $("rollback-reason").value }).then(function (r) {
      $("rollback-status").textContent = r.message;
      $("rollback-reason").value = "";
      watchServing();
    }, function (err) { $("rollback-status").textContent = err.message; });
  });

  // ---- edit --------------------------------------------------------------------------
  function fillEditList() {
    var kind = $("edit-kind").value;
    var filter = $("edit-filter").value.trim().toLowerCase();
    var items = kind === "form" ? catalogue.forms : kind === "faq" ? catalogue.faqs :
      catalogue.responses.map(function (r) { return { id: r, title: r }; });
    var select = $("edit-id");
    select.textContent = "";
    items.filter(function (i) {
      return !filter || i.title.toLowerCase().indexOf(filter) !== -1 || i.id.toLowerCase().indexOf(filter) !== -1;
    }).forEach(function (i) {
      select.appendChild(el("option", { value: i.id }, i.title === i.id ? i.id : i.title + " (" + i.id + ")"));
    });
  }
  $("edit-kind").addEventListener("change", fillEditList);
  $("edit-filter").addEventListener("input", fillEditList);

  function say(id, text) { $(id).textContent = text || ""; }

  function sayWithList(id, text, items) {
    var box = $(id);
    box.textContent = "";
    if (text) box.appendChild(el("p", null, text));
    if (items && items.length) {
      var list = el("ul", { className: "warnings" });
      items.forEach(function (w) { list.appendChild(el("li", null, w)); });
      box.appendChild(list);
    }
  }

  function fieldValues() {
    var fields = {};
    Array.prototype.forEach.call($("edit-fields").querySelectorAll("[data-field]"), function (input) {
      fields[input.getAttribute("data-field")] = input.value;
    });
    return fields;
  }

  function showFields(data) {
    $("edit-form").hidden = false;
    $("preview").hidden = true;
    var box = $("edit-fields");
    box.textContent = "";
    data.fields.forEach(function (f) {
      var fid = "field-" + f.name;
      box.appendChild(el("label", { "for": fid }, f.label));
      var input;
      if (f.type === "select") {
        input = el("select", { id: fid });
        if (data["new"]) input.appendChild(el("option", { value: "" }, "Vælg …"));
        f.options.forEach(function (o) { input.appendChild(el("option", { value: o }, o)); });
      } else if (f.type === "text") {
        input = el("input", { id: fid, type: "text" });
      } else {
        input = el("textarea", { id: fid, rows: f.type === "list" ? "8" : "4" });
      }
      input.setAttribute("data-field", f.name);
      input.value = f.value === null || f.value === undefined ? "" : f.value;
      box.appendChild(input);
      if (f.buttons && f.buttons.length) {
        box.appendChild(el("p", { className: "help" }, "Knapper under teksten (rettes af en udvikler): " + f.buttons.join(", ")));
      }
    });
  }

  function openEdit(kind, id) {
    say("edit-status", "Henter …");
    return request("GET", "/support/api/traener/edit/" + kind + "/" + encodeURIComponent(id)).then(function (data) {
      editing = { kind: kind, id: id, hash: data.hash };
      showFields(data);
      $("edit-title").textContent = "Ret " + (kind === "form" ? "blanketten" : kind === "faq" ? "regelsvaret" : "svaret") +
        " «" + data.title + "» (" + data.file + ")";
      $("edit-save").textContent = "Gem ændringen";
      say("edit-status", "");
      $("edit-title").focus();
    }, function (err) { say("edit-status", err.message); });
  }

  function openNew(kind) {
    say("edit-status", "Henter …");
    return request("GET", "/support/api/traener/new/" + kind).then(function (data) {
      editing = { kind: kind, id: null, isNew: true };
      showFields(data);
      $("edit-title").textContent = data.title + " (" + data.file + ")";
      $("edit-save").textContent = kind === "form" ? "Opret blanketten" : "Opret regelemnet";
      say("edit-status", "");
      $("edit-title").focus();
    }, function (err) { say("edit-status", err.message); });
  }
  $("new-form").addEventListener("click", function () { openNew("form"); });
  $("new-faq").addEventListener("click", function () { openNew("faq"); });

  function reloadCatalogue() {
    return request("GET", "/support/api/traener/overview").then(function (data) {
      catalogue = { intents: data.intents, forms: data.forms, faqs: data.faqs, responses: data.responses };
      buildChoices();
      fillEditList();
    });
  }

  function editUrl(suffix) {
    if (editing.isNew) return "/support/api/traener/new/" + editing.kind + (suffix || "");
    return "/support/api/traener/edit/" + editing.kind + "/" + encodeURIComponent(editing.id) + (suffix || "");
  }

  $("edit-pick").addEventListener("submit", function (event) {
    event.preventDefault();
    var id = $("edit-id").value;
    if (!id) { say("edit-status", "Vælg noget fra listen."); return; }
    openEdit($("edit-kind").value, id);
  });

  $("edit-preview").addEventListener("click", function () {
    if (!editing) return;
    request("POST", editUrl("/preview"), { fields: fieldValues() }).then(function (r) {
      var chat = $("preview-chat");
      chat.textContent = "";
      r.messages.forEach(function (m) {
        var bubble = el("div", { className: "bubble" });
        m.text.split("\n").forEach(function (line, i) {
          if (i) bubble.appendChild(el("br"));
          bubble.appendChild(document.createTextNode(line));
        });
        chat.appendChild(bubble);
        if (m.buttons && m.buttons.length) {
          var row = el("div", { className: "preview-buttons" });
          m.buttons.forEach(function (b) { row.appendChild(el("span", { className: "fake-button" }, b)); });
          chat.appendChild(row);
        }
      });
      $("preview").hidden = false;
      if (editing.isNew) {
        sayWithList("edit-status", "Den får id'et " + r.id + ". Ikke gemt endnu." +
          (r.advice.length ? " Råd, før du opretter:" : ""), r.advice);
      } else {
        say("edit-status", r.changed.length ? "Ændret: " + r.changed.join(", ") + ". Ikke gemt endnu." : "Ingen ændringer endnu.");
      }
    }, function (err) { say("edit-status", err.message); });
  });

  $("edit-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!editing) return;
    if (editing.isNew) {
      var kind = editing.kind;
      request("POST", editUrl(), { fields: fieldValues() }).then(function (r) {
        reloadCatalogue();
        openEdit(kind, r.id).then(function () {
          sayWithList("edit-status", r.message + (r.advice.length ? " Råd:" : ""), r.advice);
        });
      }, function (err) { say("edit-status", err.message); });
      return;
    }
    request("POST", editUrl(), { fields: fieldValues(), hash: editing.hash }).then(function (r) {
      editing.hash = r.hash;
      say("edit-status", r.message);
    }, function (err) { say("edit-status", err.message); });
  });

  // ---- log -------------------------------------------------------------------------
  var ACTIONS = { review: "gennemgik", read: "læste en samtale", annotate: "rettede en besked", edit: "rettede",
    create: "oprettede", train: "trænede", stop: "stoppede", activate: "satte i drift", rollback: "rullede tilbage" };
  function loadAudit() {
    request("GET", "/support/api/traener/audit").then(function (data) {
      var list = $("audit");
      list.textContent = "";
      if (!data.entries.length) list.appendChild(el("li", null, "Ingen endnu."));
      data.entries.forEach(function (e) {
        list.appendChild(el("li", null, when(e.at) + " – " + (e.supporter || "systemet") + " " +
          (ACTIONS[e.action] || e.action) + (e.detail ? ": " + e.detail : "")));
      });
      var notes = $("notes");
      notes.textContent = "";
      if (!data.notes.length) notes.appendChild(el("li", null, "Ingen ønsker endnu."));
      data.notes.forEach(function (n) {
        notes.appendChild(el("li", null, n.dato + " – " + n.af + ": «" + n.besked + "» – " + n.oenske));
      });
    }, function (err) { $("audit").textContent = err.message; });
  }

  // ---- start -------------------------------------------------------------------------
  request("GET", "/support/api/traener/overview").then(function (data) {
    catalogue = { intents: data.intents, forms: data.forms, faqs: data.faqs, responses: data.responses };
    buildChoices();
    fillEditList();
    renderServing(data.serving);
    renderJob(data.job);
    if (data.job.state === "running") pollJob();
    else loadComparison(false);
  }, function (err) { $("review-status").textContent = err.message; });

  var start = (window.location.hash || "").replace("#", "");
  if (tabFor(start)) selectTab(tabFor(start), false);
})();
