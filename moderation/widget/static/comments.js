/*
 * Comment widget. Embed it under an article with:
 *
 *   <div data-article-id="budget-2026"></div>
 *   <script src="https://comments.example/widget/v1/comments.js" data-key="mpk_..." defer></script>
 *
 * data-key is the site's publishable key (mpk_...), never its secret API key (msk_...).
 * Optional on the div: data-article-title and data-article-url (defaults: the page's title
 * and canonical URL). Optional on the script: data-api, the service's base URL (default: where
 * the script was loaded from).
 *
 * No dependencies, no cookies: a random reader token and the ids of the reader's own
 * comments are kept in localStorage, so a reader sees their comments awaiting moderation and
 * why one was not published. Readers can report a published comment. A reader a moderator
 * warned reads the message and confirms it before commenting again; a suspended or banned
 * reader is told so and the form is disabled.
 * Every text from the server is inserted with textContent, never as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !window.fetch) return;

  var KEY = (script.getAttribute("data-key") || "").trim();
  var BASE = (script.getAttribute("data-api") || new URL(script.src, location.href).origin).replace(
    /\/+$/,
    ""
  );
  var PAGE_SIZE = 20;
  var MAX_OWN = 20;
  var MAX_TEXT = 5000;
  var MAX_REPORT_TEXT = 500;
  var TOKEN = /^[A-Za-z0-9_-]{16,128}$/;
  var REPORT_REASONS = [
    ["offensive", "Offensive"],
    ["abusive", "Abusive or harassment"],
    ["hate_speech", "Hate speech"],
    ["spam", "Spam"],
    ["misinformation", "Misinformation"],
    ["illegal", "Illegal content"],
    ["other", "Other"],
  ];

  var TEXT = {
    prompt: "What is your opinion on this topic?",
    first: "Leave the first comment",
    post: "Post comment",
    posting: "Posting\u2026",
    name: "Your name",
    comment: "Your comment",
    hint: "Comments are checked before they appear. Ctrl+Enter posts.",
    list: "Comments",
    awaiting: "Awaiting moderation",
    notPublished: "Not published",
    statement: "Why, and how to appeal (statement of reasons)",
    publishedBadge: "Published",
    closed: "Comments are closed for this article.",
    more: "Show more comments",
    loading: "Loading comments\u2026",
    thanks: "Thank you! Your comment is awaiting moderation.",
    published: "Thank you! Your comment is published.",
    rejected: "Sorry, your comment cannot be published.",
    loadError: "Comments could not be loaded. Please reload the page to try again.",
    network: "The comment service could not be reached. Please try again.",
    forbidden: "This page is not allowed to post comments.",
    needName: "Please enter your name.",
    needText: "Please write a comment.",
    tooFast: function (seconds) {
      return "You are commenting too fast. Please try again in " + seconds + " seconds.";
    },
    report: "Report",
    reportLabel: function (name) {
      return "Report the comment by " + name;
    },
    reportTitle: "Report this comment",
    reportLegend: "What is wrong with this comment?",
    reportText: "Tell the moderators more (required for \u201cOther\u201d)",
    reportHint: "Up to " + MAX_REPORT_TEXT + " characters.",
    reportSend: "Send report",
    reportSending: "Sending\u2026",
    reportCancel: "Cancel",
    reportThanks: "Thanks, your report was received.",
    reportDuplicate: "You already reported this comment.",
    reportGone: "This comment can no longer be reported.",
    needReason: "Please choose a reason.",
    needReportText: "Please tell the moderators what is wrong.",
    reportTooFast: function (seconds) {
      return "You are sending reports too fast. Please try again in " + seconds + " seconds.";
    },
    warningTitle: "A message from the moderators",
    warningHint: "Please read it. You can comment again once you confirm that you have.",
    understand: "I understand",
    acknowledged: "Thank you. You can comment again.",
    suspended: "You can comment again on ",
    suspendedOpen: "Your commenting is suspended for now.",
    banned: "You can no longer comment on this site.",
  };

  if (KEY.indexOf("msk_") === 0) {
    console.error(
      "comment widget: data-key holds a SECRET site key. Remove it from this page, rotate " +
        "it, and use the site's publishable key (mpk_...)."
    );
    return;
  }
  if (KEY.indexOf("mpk_") !== 0) {
    console.error("comment widget: data-key must be the site's publishable key (mpk_...).");
    return;
  }

  // ---- storage that survives a browser refusing localStorage ----

  var memory = {};
  var store = {
    get: function (name, fallback) {
      try {
        var raw = window.localStorage.getItem(name);
        return raw === null ? fallback : JSON.parse(raw);
      } catch (error) {
        return name in memory ? memory[name] : fallback;
      }
    },
    set: function (name, value) {
      memory[name] = value;
      try {
        window.localStorage.setItem(name, JSON.stringify(value));
      } catch (error) {
        /* private mode: memory only */
      }
    },
  };

  function randomToken() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  // The reader's token if this browser has one (a reader without one has no comments yet).
  function storedToken() {
    var token = store.get("mc:reader", null);
    return typeof token === "string" && TOKEN.test(token) ? token : null;
  }

  function readerToken() {
    var token = storedToken();
    if (!token) {
      token = randomToken();
      store.set("mc:reader", token);
    }
    return token;
  }

  function readerHeaders() {
    var token = storedToken();
    return token ? { "Reader-Token": token } : {};
  }

  var formCount = 0;

  function publishedBadge() {
    return el("span", { class: "mc-badge mc-badge-published", text: TEXT.publishedBadge });
  }

  // ---- the public API ----

  function api(path, options) {
    var init = Object.assign({ mode: "cors", credentials: "omit" }, options || {});
    init.headers = Object.assign({ Accept: "application/json" }, init.headers || {});
    var url = BASE + "/api/v1/public/" + encodeURIComponent(KEY) + path;
    return fetch(url, init).then(function (response) {
      return response
        .json()
        .catch(function () {
          return null;
        })
        .then(function (body) {
          return {
            status: response.status,
            body: body,
            retryAfter: response.headers.get("Retry-After"),
          };
        });
    });
  }

  function articlePath(articleId) {
    return "/articles/" + articleId.split("/").map(encodeURIComponent).join("/") + "/comments";
  }

  // ---- DOM helpers ----

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    for (var i = 2; i < arguments.length; i++) {
      if (arguments[i] !== null && arguments[i] !== undefined) node.append(arguments[i]);
    }
    return node;
  }

  function formatTime(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    try {
      return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    } catch (error) {
      return date.toLocaleString();
    }
  }

  function addStylesheet() {
    var href = BASE + "/widget/v1/comments.css";
    if (document.querySelector('link[data-mc-style="1"]')) return;
    document.head.append(el("link", { rel: "stylesheet", href: href, "data-mc-style": "1" }));
  }

  function canonicalUrl() {
    var link = document.querySelector('link[rel="canonical"]');
    var url = link && link.href ? link.href : location.href;
    return url.split("#")[0];
  }

  // ---- one widget under one article ----

  function Widget(root, index) {
    this.root = root;
    this.articleId = root.getAttribute("data-article-id");
    this.title = root.getAttribute("data-article-title") || document.title || null;
    this.url = root.getAttribute("data-article-url") || canonicalUrl();
    this.ownKey = "mc:own:" + KEY + ":" + this.articleId;
    this.cursor = null;
    this.publishedCount = 0;
    this.ownCount = 0;
    this.busy = false;
    this.pending = { text: null, key: null };
    this.build(index);
  }

  Widget.prototype.build = function (index) {
    var id = function (name) {
      return "mc-" + name + "-" + index;
    };
    this.nameInput = el("input", {
      id: id("name"),
      name: "author_name",
      type: "text",
      autocomplete: "nickname",
      maxlength: 100,
      required: true,
      "aria-describedby": id("name-error"),
    });
    this.nameInput.value = store.get("mc:name", "") || "";
    this.nameError = el("p", { id: id("name-error"), class: "mc-error", hidden: true });
    this.textInput = el("textarea", {
      id: id("text"),
      name: "text",
      rows: 4,
      maxlength: MAX_TEXT,
      required: true,
      "aria-describedby": id("hint") + " " + id("text-error"),
    });
    this.textError = el("p", { id: id("text-error"), class: "mc-error", hidden: true });
    this.button = el("button", { type: "submit", class: "mc-submit", text: TEXT.first });
    this.status = el("p", { class: "mc-status", role: "status", "aria-live": "polite" });
    // A warning, suspension or ban: announced when it appears.
    this.standing = el("div", { class: "mc-standing", role: "alert" });
    this.form = el(
      "form",
      { class: "mc-form", novalidate: true, "aria-labelledby": id("title") },
      el(
        "div",
        { class: "mc-field" },
        el("label", { for: id("name"), text: TEXT.name }),
        this.nameInput,
        this.nameError
      ),
      el(
        "div",
        { class: "mc-field" },
        el("label", { for: id("text"), text: TEXT.comment }),
        this.textInput,
        el("p", { id: id("hint"), class: "mc-hint", text: TEXT.hint }),
        this.textError
      ),
      el("div", { class: "mc-actions" }, this.button),
      this.status
    );
    this.list = el("ol", { class: "mc-list", "aria-label": TEXT.list, "aria-busy": "true" });
    this.loading = el("p", { class: "mc-loading", text: TEXT.loading });
    this.more = el("button", { type: "button", class: "mc-more", text: TEXT.more, hidden: true });
    this.section = el(
      "section",
      { class: "mc", "aria-labelledby": id("title") },
      el("h2", { id: id("title"), class: "mc-title", text: TEXT.prompt }),
      this.standing,
      this.form,
      this.loading,
      this.list,
      this.more
    );
    this.root.replaceChildren(this.section);

    var self = this;
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.submit();
    });
    this.textInput.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        self.submit();
      }
    });
    this.more.addEventListener("click", function () {
      self.loadPage();
    });
  };

  Widget.prototype.load = function () {
    var self = this;
    return Promise.all([this.loadPage(), this.loadOwn(), this.loadStanding()]).then(
      function (results) {
        if (!self.failed) self.loading.remove();
        results[1].forEach(function (comment) {
          self.markPublished(comment);
        });
        self.list.setAttribute("aria-busy", "false");
        self.updateButton();
      }
    );
  };

  Widget.prototype.loadPage = function () {
    var self = this;
    var query = "?limit=" + PAGE_SIZE + (this.cursor ? "&cursor=" + encodeURIComponent(this.cursor) : "");
    this.more.disabled = true;
    return api(articlePath(this.articleId) + query)
      .then(function (response) {
        if (response.status !== 200 || !response.body) throw new Error("HTTP " + response.status);
        var body = response.body;
        if (body.article && body.article.closed) self.close();
        var ownIds = self.ownIds();
        body.comments.forEach(function (comment) {
          var existing = self.list.querySelector('[data-comment-id="' + CSS.escape(comment.id) + '"]');
          if (existing) existing.remove();
          self.list.append(self.item(comment, ownIds.indexOf(comment.id) !== -1));
          self.publishedCount += 1;
        });
        self.cursor = body.next_cursor;
        self.more.hidden = !self.cursor;
        self.more.disabled = false;
        self.updateButton();
      })
      .catch(function () {
        self.failed = true;
        self.loading.textContent = TEXT.loadError;
        self.loading.setAttribute("role", "alert");
        if (!self.loading.isConnected) self.list.before(self.loading);
        self.more.disabled = false;
      });
  };

  Widget.prototype.ownIds = function () {
    var ids = store.get(this.ownKey, []);
    return Array.isArray(ids) ? ids.filter(function (id) { return typeof id === "string"; }) : [];
  };

  Widget.prototype.remember = function (ids) {
    store.set(this.ownKey, ids.slice(0, MAX_OWN));
  };

  // The reader's own comments that are not published yet, at the top, marked as such; the
  // ones decided since the last visit are shown once with their outcome, then forgotten.
  // Resolves to those that were published meanwhile.
  Widget.prototype.loadOwn = function () {
    var self = this;
    var ids = this.ownIds();
    var headers = readerHeaders();
    return Promise.all(
      ids.map(function (id) {
        return api("/comments/" + encodeURIComponent(id), { headers: headers }).catch(function () {
          return { status: 0 };
        });
      })
    ).then(function (responses) {
      var keep = [];
      var waiting = [];
      var published = [];
      responses.forEach(function (response, i) {
        if (response.status === 0 || response.status >= 500) keep.push(ids[i]);
        if (response.status !== 200 || !response.body) return;
        var comment = response.body;
        if (comment.status === "pending" || comment.status === "held") {
          keep.push(comment.id);
          waiting.push(comment);
        } else if (comment.status === "rejected") {
          waiting.push(comment);
        } else if (comment.status === "approved") {
          published.push(comment);
        }
      });
      self.remember(keep);
      waiting.reverse().forEach(function (comment) {
        self.list.prepend(self.item(comment, true));
        self.ownCount += 1;
      });
      return published;
    });
  };

  // One of the reader's comments was published since their last visit: say so once.
  Widget.prototype.markPublished = function (comment) {
    var existing = this.list.querySelector('[data-comment-id="' + CSS.escape(comment.id) + '"]');
    if (!existing) {
      this.list.prepend(this.item(comment, true));
      this.publishedCount += 1;
      return;
    }
    var actions = existing.querySelector(".mc-comment-actions");
    if (actions) actions.remove();
    existing.classList.add("mc-own");
    var meta = existing.querySelector(".mc-meta");
    if (meta && !meta.querySelector(".mc-badge-published")) {
      meta.append(" ", publishedBadge());
    }
  };

  Widget.prototype.item = function (comment, own) {
    var waiting = own && (comment.status === "pending" || comment.status === "held");
    var rejected = own && comment.status === "rejected";
    var meta = el(
      "p",
      { class: "mc-meta" },
      el("span", { class: "mc-author", text: comment.author_name }),
      " ",
      el("time", { datetime: comment.created_at, text: formatTime(comment.created_at) })
    );
    if (waiting) meta.append(" ", el("span", { class: "mc-badge", text: TEXT.awaiting }));
    if (rejected) {
      meta.append(" ", el("span", { class: "mc-badge mc-badge-rejected", text: TEXT.notPublished }));
    }
    if (own && comment.status === "approved") meta.append(" ", publishedBadge());
    var classes = "mc-comment" + (own ? " mc-own" : "") + (waiting ? " mc-waiting" : "");
    var item = el(
      "li",
      { class: classes, "data-comment-id": comment.id, "data-status": comment.status, tabindex: -1 },
      meta,
      el("p", { class: "mc-text", text: comment.text })
    );
    var reason = comment.outcome && comment.outcome.reason;
    if (rejected && reason) {
      item.append(el("p", { class: "mc-outcome", text: TEXT.notPublished + ": " + reason }));
    }
    if (rejected) this.linkStatement(comment.id, item);
    if (!own && comment.status === "approved") item.append(this.reportButton(comment, item));
    // DSA Art. 16: a notice of illegal content, on this service's own accessible form.
    if (!own && comment.status === "approved") item.append(" ", el("a", { class: "mc-dsa-link", href: BASE + "/dsa/notice?key=" + encodeURIComponent(KEY) + "&comment=" + encodeURIComponent(comment.id), target: "_blank", rel: "noopener", text: "Report illegal content" }));
    return item;
  };

  // ---- reports ----

  Widget.prototype.reportButton = function (comment, item) {
    var self = this;
    var button = el("button", {
      type: "button",
      class: "mc-report-button",
      text: TEXT.report,
      "aria-label": TEXT.reportLabel(comment.author_name),
      "aria-expanded": "false",
    });
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") === "true";
      if (open) self.closeReport(item, button);
      else self.openReport(comment, item, button);
    });
    return el("div", { class: "mc-comment-actions" }, button);
  };

  Widget.prototype.openReport = function (comment, item, button) {
    var self = this;
    var n = ++formCount;
    var id = function (name) {
      return "mc-report-" + name + "-" + n;
    };
    var radios = REPORT_REASONS.map(function (reason) {
      var input = el("input", {
        type: "radio",
        name: id("reason"),
        value: reason[0],
        id: id(reason[0]),
      });
      var label = el("label", { for: id(reason[0]), text: reason[1] });
      return el("div", { class: "mc-radio" }, input, label);
    });
    var text = el("textarea", {
      id: id("text"),
      name: "text",
      rows: 3,
      maxlength: MAX_REPORT_TEXT,
      "aria-describedby": id("hint") + " " + id("text-error"),
    });
    var textError = el("p", { id: id("text-error"), class: "mc-error", hidden: true });
    var problem = el("p", { class: "mc-error", role: "alert" });
    var send = el("button", { type: "submit", class: "mc-submit", text: TEXT.reportSend });
    var cancel = el("button", { type: "button", class: "mc-cancel", text: TEXT.reportCancel });
    var reasons = el("fieldset", { class: "mc-reasons" }, el("legend", { text: TEXT.reportLegend }));
    reasons.append.apply(reasons, radios);
    var form = el(
      "form",
      { class: "mc-report", id: id("form"), novalidate: true, "aria-label": TEXT.reportTitle },
      reasons,
      el(
        "div",
        { class: "mc-field" },
        el("label", { for: id("text"), text: TEXT.reportText }),
        text,
        el("p", { id: id("hint"), class: "mc-hint", text: TEXT.reportHint }),
        textError
      ),
      problem,
      el("div", { class: "mc-actions" }, send, " ", cancel)
    );
    // Exists before the answer arrives, so that the receipt is announced.
    var receipt = el("p", { class: "mc-report-status", role: "status", tabindex: -1 });
    var old = item.querySelector(".mc-report-area");
    if (old) old.remove();
    item.append(el("div", { class: "mc-report-area" }, form, receipt));
    button.setAttribute("aria-expanded", "true");
    button.setAttribute("aria-controls", id("form"));

    var parts = { form: form, text: text, textError: textError, problem: problem, send: send };
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.sendReport(comment, item, button, parts, receipt);
    });
    cancel.addEventListener("click", function () {
      self.closeReport(item, button);
    });
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.preventDefault();
        self.closeReport(item, button);
      }
    });
    form.querySelector("input").focus();
  };

  Widget.prototype.closeReport = function (item, button) {
    var area = item.querySelector(".mc-report-area");
    if (area) area.remove();
    button.setAttribute("aria-expanded", "false");
    button.removeAttribute("aria-controls");
    button.focus();
  };

  Widget.prototype.sendReport = function (comment, item, button, parts, receipt) {
    var self = this;
    var chosen = parts.form.querySelector("input[type=radio]:checked");
    var text = parts.text.value.trim();
    parts.problem.textContent = "";
    parts.text.removeAttribute("aria-invalid");
    parts.textError.hidden = true;
    if (!chosen) {
      parts.problem.textContent = TEXT.needReason;
      parts.form.querySelector("input[type=radio]").focus();
      return;
    }
    if (chosen.value === "other" && !text) {
      return this.fieldError(parts.text, parts.textError, TEXT.needReportText);
    }
    if (parts.send.disabled) return;
    parts.send.disabled = true;
    parts.send.textContent = TEXT.reportSending;
    api("/comments/" + encodeURIComponent(comment.id) + "/reports", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        reader_token: readerToken(),
        reason: chosen.value,
        text: text || null,
      }),
    })
      .then(function (response) {
        var error = (response.body && response.body.error) || {};
        var receipts = { 201: TEXT.reportThanks, 409: TEXT.reportDuplicate, 404: TEXT.reportGone };
        if (receipts[response.status]) {
          return self.reported(item, button, receipt, receipts[response.status]);
        }
        parts.send.disabled = false;
        parts.send.textContent = TEXT.reportSend;
        if (response.status === 429) {
          var seconds = parseInt(response.retryAfter || "60", 10) || 60;
          parts.problem.textContent = TEXT.reportTooFast(seconds);
        } else if (response.status === 422 && error.field === "text") {
          var message = String(error.message || TEXT.needReportText);
          self.fieldError(parts.text, parts.textError, message);
        } else {
          parts.problem.textContent = String(error.message || TEXT.network);
        }
      })
      .catch(function () {
        parts.send.disabled = false;
        parts.send.textContent = TEXT.reportSend;
        parts.problem.textContent = TEXT.network;
      });
  };

  Widget.prototype.reported = function (item, button, receipt, message) {
    var form = item.querySelector(".mc-report");
    if (form) form.remove();
    receipt.textContent = message;
    button.parentNode.remove();
    receipt.focus();
  };

  // ---- statements of reasons (DSA Art. 17): the reader's own, with how to appeal ----

  Widget.prototype.statements = function () {
    var headers = readerHeaders();
    if (!headers["Reader-Token"]) return Promise.resolve([]);
    if (!this.statementsRequest) {
      this.statementsRequest = api("/dsa/statements", { headers: headers })
        .then(function (response) {
          return (response.status === 200 && response.body && response.body.statements) || [];
        })
        .catch(function () {
          return [];
        });
    }
    return this.statementsRequest;
  };

  Widget.prototype.linkStatement = function (commentId, item) {
    // A statement written since the list was read (a decision just now) is asked for again.
    var self = this;
    var find = function (statements) {
      return statements.filter(function (statement) {
        return statement.comment_id === commentId && /^https?:/.test(statement.url || "");
      })[0];
    };
    this.statements().then(function (statements) {
      var found = find(statements);
      if (found) return found;
      self.statementsRequest = null;
      return self.statements().then(find);
    }).then(function (statement) {
      if (!statement) return;
      item.append(
        el("p", { class: "mc-statement" },
          el("a", { href: statement.url, target: "_blank", rel: "noopener", text: TEXT.statement }))
      );
    });
  };

  // ---- the reader's standing: a warning to read, a suspension, a ban ----

  Widget.prototype.loadStanding = function () {
    var headers = readerHeaders();
    if (!headers["Reader-Token"]) return Promise.resolve();
    var self = this;
    return api("/me", { headers: headers })
      .then(function (response) {
        if (response.status !== 200 || !response.body) return;
        var standing = response.body;
        if (standing.banned) self.block(TEXT.banned);
        else if (standing.suspended_until) self.suspended(standing.suspended_until);
        else if (standing.warning) self.warn(String(standing.warning.message || ""));
      })
      .catch(function () {
        /* the post itself is refused if the reader may not comment */
      });
  };

  Widget.prototype.setBlocked = function (blocked) {
    this.blocked = blocked;
    this.nameInput.disabled = blocked;
    this.textInput.disabled = blocked;
    this.button.disabled = blocked || this.busy;
    this.form.classList.toggle("mc-form-blocked", blocked);
  };

  Widget.prototype.block = function (message, detail) {
    var notice = el("p", { class: "mc-notice mc-notice-blocked", tabindex: -1 }, message, detail);
    this.standing.replaceChildren(notice);
    this.setBlocked(true);
    return notice;
  };

  Widget.prototype.suspended = function (until) {
    if (!until || !formatTime(until)) return this.block(TEXT.suspendedOpen);
    var when = el("time", { datetime: until, text: formatTime(until) });
    return this.block(el("span", {}, TEXT.suspended, when, "."));
  };

  Widget.prototype.warn = function (message) {
    var self = this;
    var button = el("button", {
      type: "button",
      class: "mc-submit mc-acknowledge",
      text: TEXT.understand,
    });
    var problem = el("p", { class: "mc-error" });
    var notice = el(
      "div",
      { class: "mc-notice mc-notice-warning" },
      el("p", { class: "mc-notice-title", text: TEXT.warningTitle }),
      el("blockquote", { class: "mc-notice-message", text: message }),
      el("p", { class: "mc-hint", text: TEXT.warningHint }),
      button,
      problem
    );
    this.standing.replaceChildren(notice);
    this.setBlocked(true);
    button.addEventListener("click", function () {
      self.acknowledge(button, problem);
    });
    return button;
  };

  Widget.prototype.acknowledge = function (button, problem) {
    var self = this;
    button.disabled = true;
    problem.textContent = "";
    api("/me/acknowledge", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reader_token: readerToken() }),
    })
      .then(function (response) {
        if (response.status === 200) {
          self.standing.replaceChildren();
          self.setBlocked(false);
          self.say(TEXT.acknowledged);
          self.textInput.focus();
          return;
        }
        button.disabled = false;
        var error = (response.body && response.body.error) || {};
        problem.textContent = String(error.message || TEXT.network);
      })
      .catch(function () {
        button.disabled = false;
        problem.textContent = TEXT.network;
      });
  };

  Widget.prototype.updateButton = function () {
    if (this.busy) return;
    var empty = this.publishedCount === 0 && this.ownCount === 0;
    this.button.textContent = empty ? TEXT.first : TEXT.post;
  };

  Widget.prototype.close = function () {
    if (!this.form.isConnected) return;
    this.form.replaceWith(el("p", { class: "mc-closed", text: TEXT.closed }));
  };

  Widget.prototype.fieldError = function (input, error, message) {
    input.setAttribute("aria-invalid", "true");
    error.textContent = message;
    error.hidden = false;
    input.focus();
  };

  Widget.prototype.clearErrors = function () {
    [
      [this.nameInput, this.nameError],
      [this.textInput, this.textError],
    ].forEach(function (pair) {
      pair[0].removeAttribute("aria-invalid");
      pair[1].hidden = true;
      pair[1].textContent = "";
    });
    this.status.textContent = "";
    this.status.classList.remove("mc-status-error");
  };

  Widget.prototype.say = function (message, isError) {
    this.status.textContent = message;
    this.status.classList.toggle("mc-status-error", !!isError);
  };

  Widget.prototype.submit = function () {
    if (this.busy || this.blocked) return;
    this.clearErrors();
    var name = this.nameInput.value.trim();
    var text = this.textInput.value;
    if (!name) return this.fieldError(this.nameInput, this.nameError, TEXT.needName);
    if (!text.trim()) return this.fieldError(this.textInput, this.textError, TEXT.needText);
    store.set("mc:name", name);
    // The same text retried after a network error keeps its key, so it is stored once.
    if (this.pending.text !== text) this.pending = { text: text, key: randomToken() };
    this.setBusy(true);
    var self = this;
    api(articlePath(this.articleId), {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": this.pending.key },
      body: JSON.stringify({
        author_name: name,
        text: text,
        reader_token: readerToken(),
        article_title: this.title ? this.title.slice(0, 500) : null,
        article_url: /^https?:\/\//.test(this.url) && this.url.length <= 2000 ? this.url : null,
      }),
    })
      .then(function (response) {
        self.setBusy(false);
        if (response.status === 202) return self.posted(response.body);
        self.refused(response);
      })
      .catch(function () {
        self.setBusy(false);
        self.say(TEXT.network, true);
      });
  };

  Widget.prototype.setBusy = function (busy) {
    this.busy = busy;
    this.button.disabled = busy || !!this.blocked;
    this.form.setAttribute("aria-busy", busy ? "true" : "false");
    if (busy) this.button.textContent = TEXT.posting;
    else this.updateButton();
  };

  Widget.prototype.posted = function (comment) {
    this.pending = { text: null, key: null };
    this.textInput.value = "";
    var item = this.item(comment, true);
    var existing = this.list.querySelector('[data-comment-id="' + CSS.escape(comment.id) + '"]');
    if (existing) existing.remove();
    this.list.prepend(item);
    if (comment.status === "approved") {
      this.publishedCount += 1;
      this.say(TEXT.published);
    } else if (comment.status === "rejected") {
      this.ownCount += 1;
      var reason = comment.outcome && comment.outcome.reason;
      var why = reason ? " " + TEXT.notPublished + ": " + reason + "." : "";
      this.say(TEXT.rejected + why, true);
    } else {
      this.ownCount += 1;
      this.remember([comment.id].concat(this.ownIds()));
      this.say(TEXT.thanks);
    }
    this.updateButton();
    item.focus();
  };

  Widget.prototype.refused = function (response) {
    var error = (response.body && response.body.error) || {};
    var message = String(error.message || "").replace(/^[a-z_]+: /, "");
    if (response.status === 409 && error.code === "article_closed") {
      this.close();
      return;
    }
    if (response.status === 429) {
      var seconds = parseInt(response.retryAfter || "60", 10) || 60;
      this.say(TEXT.tooFast(seconds), true);
      return;
    }
    if (response.status === 403 && error.code === "warning_unacknowledged") {
      this.warn(String(error.warning || message)).focus();
      return;
    }
    if (response.status === 403 && error.code === "author_suspended") {
      this.suspended(error.until).focus();
      return;
    }
    if (response.status === 403 && error.code === "author_banned") {
      this.block(TEXT.banned).focus();
      return;
    }
    if (response.status === 403) {
      this.say(TEXT.forbidden, true);
      return;
    }
    if (response.status === 422 && error.field === "author_name") {
      this.fieldError(this.nameInput, this.nameError, message || TEXT.needName);
      return;
    }
    if (response.status === 422 && error.field === "text") {
      this.fieldError(this.textInput, this.textError, message || TEXT.needText);
      return;
    }
    this.say(message || TEXT.network, true);
  };

  function start() {
    addStylesheet();
    var roots = document.querySelectorAll("div[data-article-id]");
    Array.prototype.forEach.call(roots, function (root, index) {
      if (root.getAttribute("data-mc-mounted")) return;
      root.setAttribute("data-mc-mounted", "1");
      new Widget(root, index).load();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
