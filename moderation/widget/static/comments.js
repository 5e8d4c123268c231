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
 * comments are kept in localStorage, so a reader sees their comments awaiting moderation.
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

  function readerToken() {
    var token = store.get("mc:reader", null);
    if (typeof token !== "string" || !/^[A-Za-z0-9_-]{16,128}$/.test(token)) {
      token = randomToken();
      store.set("mc:reader", token);
    }
    return token;
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
    return Promise.all([this.loadPage(), this.loadOwn()]).then(function () {
      if (!self.failed) self.loading.remove();
      self.list.setAttribute("aria-busy", "false");
      self.updateButton();
    });
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

  // The reader's own comments that are not published yet, at the top, marked as such.
  Widget.prototype.loadOwn = function () {
    var self = this;
    var ids = this.ownIds();
    return Promise.all(
      ids.map(function (id) {
        return api("/comments/" + encodeURIComponent(id)).catch(function () {
          return { status: 0 };
        });
      })
    ).then(function (responses) {
      var keep = [];
      var waiting = [];
      responses.forEach(function (response, i) {
        if (response.status === 0 || response.status >= 500) keep.push(ids[i]);
        if (response.status !== 200 || !response.body) return;
        var comment = response.body;
        if (comment.status === "pending" || comment.status === "held") {
          keep.push(comment.id);
          waiting.push(comment);
        } else if (comment.status === "rejected") {
          waiting.push(comment); // shown once, then forgotten
        }
      });
      self.remember(keep);
      waiting.reverse().forEach(function (comment) {
        self.list.prepend(self.item(comment, true));
        self.ownCount += 1;
      });
    });
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
    var classes = "mc-comment" + (own ? " mc-own" : "") + (waiting ? " mc-waiting" : "");
    return el(
      "li",
      { class: classes, "data-comment-id": comment.id, "data-status": comment.status, tabindex: -1 },
      meta,
      el("p", { class: "mc-text", text: comment.text })
    );
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
    if (this.busy) return;
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
    this.button.disabled = busy;
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
      this.say(TEXT.rejected, true);
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
