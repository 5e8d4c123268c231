// Keyboard-first moderation: one current card; a approves, r then 1-5 rejects, d dismisses
// reports, u opens the author, x selects. The server answers each action with the card's new
// HTML (or nothing when it leaves the queue); this script only moves the focus, so the next
// comment is up at once. The queue polls for changes (#live); moveLive() files what comes back.
(function () {
  "use strict";

  let currentId = null;
  let currentIndex = 0;

  const cardList = () => Array.from(document.querySelectorAll("#cards .card"));
  const bulkForm = () => document.getElementById("bulk-form");
  const selectedBoxes = () =>
    Array.from(document.querySelectorAll("#cards .card input.select:checked"));

  function current() {
    const byId = currentId && document.getElementById("card-" + currentId);
    if (byId && !byId.classList.contains("busy")) return byId;
    const cards = cardList().filter((card) => !card.classList.contains("busy"));
    return cards[Math.min(currentIndex, cards.length - 1)] || null;
  }

  function setCurrent(card, scroll) {
    document.querySelectorAll("#cards .card.current").forEach((c) => c.classList.remove("current"));
    if (!card) {
      currentId = null;
      return;
    }
    card.classList.add("current");
    currentId = card.dataset.id;
    currentIndex = Math.max(0, cardList().indexOf(card));
    if (scroll !== false) card.scrollIntoView({ block: "nearest" });
    if (!card.contains(document.activeElement)) card.focus({ preventScroll: true });
    loadMoreIfShort();
  }

  function move(delta) {
    const cards = cardList().filter((card) => !card.classList.contains("busy"));
    if (!cards.length) return;
    const at = cards.indexOf(current());
    setCurrent(cards[Math.max(0, Math.min(cards.length - 1, at + delta))]);
  }

  function loadMoreIfShort() {
    const more = document.getElementById("more");
    if (!more || !window.htmx) return;
    const cards = cardList();
    const at = cards.indexOf(document.querySelector("#cards .card.current"));
    if (cards.length - at <= 4) window.htmx.trigger(more, "more");
  }

  // After an action the focus moves on at once; the acted card greys out until it is
  // swapped (removed from this queue, or redrawn with its new status).
  function actedOn(card) {
    if (card.classList.contains("busy")) return;
    const cards = cardList().filter((c) => !c.classList.contains("busy"));
    const next = cards[cards.indexOf(card) + 1] || cards[cards.indexOf(card) - 1] || null;
    card.classList.add("busy");
    card.classList.remove("current");
    if (next) setCurrent(next);
    else currentId = null;
  }

  function rejectPanel(scope) {
    return scope && scope.querySelector(".reject-form");
  }

  function openPanel() {
    return document.querySelector(".reject-form.open");
  }

  function showReject(scope) {
    closePanels();
    const panel = rejectPanel(scope);
    if (!panel) return;
    panel.hidden = false;
    panel.classList.add("open");
  }

  function closePanels() {
    document.querySelectorAll(".reject-form.open").forEach((panel) => {
      panel.hidden = true;
      panel.classList.remove("open");
    });
  }

  function chooseReason(key) {
    const panel = openPanel();
    const button = panel && panel.querySelector('.reason-button[data-key="' + key + '"]');
    if (!button) return false;
    button.click(); // the click handler below marks the card as acted on
    closePanels();
    return true;
  }

  function approve() {
    if (selectedBoxes().length) {
      bulkForm().querySelector(".bulk-approve").click();
      return;
    }
    // On a reported card, keeping the comment published is dismissing its reports.
    submitOnCurrent(".approve-form, .dismiss-form");
  }

  // A card someone else changed (stale) or one still published with reports has no such form.
  function submitOnCurrent(selector) {
    const card = current();
    const form = card && card.querySelector(selector);
    if (!form) return;
    form.requestSubmit();
    actedOn(card);
  }

  function openAuthor() {
    const link = current() && current().querySelector(".author-link");
    if (link) link.click();
  }

  const drawer = () => document.getElementById("drawer");

  function drawerOpen() {
    return Boolean(drawer() && !drawer().hidden);
  }

  function showDrawer() {
    drawer().hidden = false;
    const view = drawer().querySelector(".author-view");
    if (view) {
      view.tabIndex = -1;
      view.focus();
    }
  }

  function closeDrawer() {
    drawer().hidden = true;
    drawer().replaceChildren();
    const card = current();
    if (card) card.focus({ preventScroll: true });
  }

  // The datetime-local fields mean the moderator's own time.
  function fillTimeZones() {
    let zone = "UTC";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (error) {
      zone = "UTC";
    }
    document.querySelectorAll('input[name="tz"]').forEach((input) => (input.value = zone));
  }

  // --- The live queue -----------------------------------------------------------------------

  function sortKey(card, order) {
    const seq = Number(card.dataset.seq);
    if (order === "newest") return [-seq];
    if (order === "score") return [-Number(card.dataset.score), -seq];
    return [seq];
  }

  function comesBefore(a, b) {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
    return false;
  }

  // A new card goes where the queue's order puts it; past the last loaded card only when
  // the whole queue is loaded (otherwise the next page brings it).
  function insertNew(card) {
    const list = document.getElementById("cards");
    const order = list.dataset.order;
    const key = sortKey(card, order);
    const next = cardList().find((other) => comesBefore(key, sortKey(other, order)));
    card.classList.add("new");
    if (next) next.before(card);
    else if (!document.getElementById("more")) list.appendChild(card);
    else card.remove();
  }

  // A poll's cards: a changed card replaces the one shown (with the line saying who changed
  // it; one that left the queue comes without its actions), a new one in the queue is added.
  function moveLive(inbox) {
    const list = document.getElementById("cards");
    Array.from(inbox.querySelectorAll(".card")).forEach((incoming) => {
      const shown = list && list.querySelector("#" + CSS.escape(incoming.id));
      if (!list) incoming.remove();
      else if (shown) {
        const same = shown.dataset.state === incoming.dataset.state;
        if (same || shown.classList.contains("busy")) {
          incoming.remove();
          return;
        }
        const note = incoming.querySelector(".live-note");
        if (note) note.hidden = false;
        const wasCurrent = shown.classList.contains("current");
        shown.replaceWith(incoming);
        if (wasCurrent) incoming.classList.add("current");
      } else if (incoming.dataset.live === "in") insertNew(incoming);
      else incoming.remove();
    });
    inbox.replaceChildren();
    selectionChanged();
  }

  // A card added live may come again with a later page: keep the first.
  function dropDuplicates() {
    const seen = new Set();
    cardList().forEach((card) => {
      if (seen.has(card.id)) card.remove();
      else seen.add(card.id);
    });
  }

  function reject() {
    if (selectedBoxes().length) showReject(bulkForm());
    else showReject(current());
  }

  function toggleSelect() {
    const card = current();
    const box = card && card.querySelector("input.select");
    if (!box) return;
    box.checked = !box.checked;
    selectionChanged();
    move(1);
  }

  function selectionChanged() {
    const boxes = selectedBoxes();
    document.querySelectorAll("#cards .card").forEach((card) => {
      const box = card.querySelector("input.select");
      card.classList.toggle("selected", Boolean(box && box.checked));
    });
    const form = bulkForm();
    if (!form) return;
    form.classList.toggle("active", boxes.length > 0);
    form.querySelector(".selected-count").textContent = boxes.length + " selected";
    if (!boxes.length && form.querySelector(".reject-form.open")) closePanels();
  }

  function clearSelection() {
    selectedBoxes().forEach((box) => (box.checked = false));
    selectionChanged();
  }

  function toggleHistory() {
    const details = current() && current().querySelector("details.history");
    if (details) details.open = !details.open;
  }

  function toggleHelp() {
    const help = document.getElementById("help");
    if (!help) return;
    if (help.open) help.close();
    else help.showModal();
  }

  // Keys go to text fields while one has the focus; checkboxes and buttons keep the shortcuts.
  const TEXT_FIELDS =
    "textarea, select, [contenteditable], input:not([type=checkbox]):not([type=radio])" +
    ":not([type=submit]):not([type=button])";

  function typing(target) {
    return target.closest && target.closest(TEXT_FIELDS);
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (drawerOpen()) {
      // The author drawer keeps its keys to itself; Esc closes it.
      if (event.key === "Escape") {
        event.preventDefault();
        closeDrawer();
        return;
      }
      if (drawer().contains(event.target)) return;
    }
    if (typing(event.target)) {
      // Enter or Escape in a note goes back to the reason keys (Enter must not submit
      // with whichever reason button comes first).
      if (event.target.name === "note" && (event.key === "Enter" || event.key === "Escape")) {
        event.preventDefault();
        event.target.blur();
      }
      return;
    }
    const help = document.getElementById("help");
    if (help && help.open) {
      // The dialog closes itself on Escape; ? closes it too.
      if (event.key === "?") toggleHelp();
      return;
    }
    const panel = openPanel();
    if (panel && /^[1-9]$/.test(event.key)) {
      if (chooseReason(event.key)) event.preventDefault();
      return;
    }
    const keys = {
      j: () => move(1),
      k: () => move(-1),
      a: approve,
      r: reject,
      d: () => submitOnCurrent(".dismiss-form"),
      u: openAuthor,
      x: toggleSelect,
      h: toggleHistory,
      "?": toggleHelp,
      n: () => panel && panel.querySelector("input[name=note]").focus(),
      Escape: closePanels,
    };
    const action = keys[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  }

  function onClick(event) {
    const target = event.target;
    const card = target.closest && target.closest("#cards .card");
    if (card && !card.classList.contains("busy")) setCurrent(card, false);
    if (target.closest(".reject-open")) {
      const scope = target.closest(".card") || bulkForm();
      const panel = rejectPanel(scope);
      if (panel && panel.classList.contains("open")) closePanels();
      else showReject(scope);
    } else if (target.closest(".help-open")) {
      toggleHelp();
    } else if (target.closest(".drawer-close")) {
      closeDrawer();
    } else if (target.closest(".clear-selection")) {
      clearSelection();
    } else if (target.closest(".card .approve-form button") && card) {
      actedOn(card);
    } else if (target.closest(".card .dismiss-form button") && card) {
      actedOn(card);
    } else if (target.closest(".card .reason-button") && card) {
      actedOn(card);
    }
  }

  function showError(event) {
    const xhr = event.detail.xhr;
    let message = "The action failed (" + xhr.status + "); nothing was changed. Reload and retry.";
    if (xhr.status === 0) message = "The server did not answer; nothing was changed.";
    const parsed = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    const flash = parsed.querySelector(".flash");
    if (flash) message = flash.textContent;
    const area = document.getElementById("flash");
    area.replaceChildren();
    const line = document.createElement("p");
    line.className = "flash error";
    line.textContent = message;
    area.appendChild(line);
    document.querySelectorAll("#cards .card.busy").forEach((c) => c.classList.remove("busy"));
  }

  function afterSwap() {
    dropDuplicates();
    fillTimeZones();
    // A form in the drawer redrew the author view: keep the keys in the drawer.
    if (drawerOpen() && !drawer().contains(document.activeElement)) showDrawer();
    selectionChanged();
    const card = current();
    if (card && !card.classList.contains("current")) setCurrent(card, false);
    else loadMoreIfShort();
  }

  function start() {
    document.addEventListener("keydown", onKey);
    document.addEventListener("click", onClick);
    document.addEventListener("change", (event) => {
      if (event.target.matches && event.target.matches("input.select")) selectionChanged();
    });
    document.body.addEventListener("htmx:afterSwap", (event) => {
      const target = event.detail.target;
      if (target && target.id === "live-inbox") moveLive(target);
      else if (target && target.id === "drawer") showDrawer();
    });
    document.body.addEventListener("htmx:afterSettle", afterSwap);
    document.body.addEventListener("htmx:responseError", showError);
    document.body.addEventListener("htmx:sendError", showError);
    document.body.addEventListener("htmx:afterRequest", (event) => {
      if (event.detail.elt === bulkForm() || bulkForm()?.contains(event.detail.elt)) {
        closePanels();
        const note = bulkForm().querySelector("input[name=note]");
        if (note) note.value = "";
      }
    });
    const first = cardList()[0];
    if (first) setCurrent(first, false);
    selectionChanged();
    fillTimeZones();
    document.body.dataset.keys = "ready"; // tells tests and tools the shortcuts are live
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
