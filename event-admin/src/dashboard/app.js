// The event-admin dashboard: reads the /v1 API with the bearer token the operator gives
// (kept in sessionStorage, so only for this tab). Every value from the API is put in the
// page with textContent or attributes, never as HTML: payloads are user data.
"use strict";

(() => {
  const TOKEN_KEY = "event-admin.token";
  const REFRESH_MS = 2000;
  const PAGE = 500;

  const $ = (id) => document.getElementById(id);

  let timer = null;
  let refreshing = false;
  let refreshAgain = false;
  // Dead letters with a redeliver or discard under way: their buttons stay disabled.
  const pending = new Set();
  // Whether the message shown came from the periodic refresh (cleared by the next good one).
  let errorFromRefresh = false;

  class ApiError extends Error {
    constructor(status, code, message, token) {
      super(message);
      this.status = status;
      this.code = code;
      // The token the request was sent with.
      this.token = token;
    }
  }

  // Calls the API; answers the parsed JSON body, or throws an ApiError with the API's message.
  // Where the router is mounted ("" at the root, "/admin" when nested there).
  const BASE = document.body.dataset.base || "";

  async function api(method, path) {
    const token = sessionStorage.getItem(TOKEN_KEY) || "";
    const response = await fetch(BASE + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      cache: "no-store",
    });
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) {
      const message = body && typeof body.message === "string"
        ? body.message
        : `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, body && body.error, message, token);
    }
    return body;
  }

  // --- Messages ---------------------------------------------------------------------------

  function showError(error, fromRefresh) {
    const box = $("error");
    if (error instanceof ApiError) {
      box.textContent = `${error.status} ${error.code || "error"}: ${error.message}`;
    } else {
      box.textContent = `The API cannot be reached: ${error && error.message ? error.message : error}`;
    }
    box.hidden = false;
    errorFromRefresh = fromRefresh;
  }

  function clearError() {
    $("error").hidden = true;
    $("error").textContent = "";
    errorFromRefresh = false;
  }

  // A 401 means the token is wrong: forget it and ask again, with the API's message.
  // An answer to a token given up since (signed out, or another token given) is dropped.
  function handle(error, fromRefresh) {
    if (error instanceof ApiError) {
      if (error.token !== sessionStorage.getItem(TOKEN_KEY)) {
        return;
      }
      if (error.status === 401) {
        signOut();
      }
    }
    showError(error, fromRefresh);
  }

  // --- Tables -----------------------------------------------------------------------------

  const text = (value) => (value === null || value === undefined ? "—" : String(value));

  // "2026-01-31T12:00:00.123Z" as "2026-01-31 12:00:00Z" (the full time is the cell's title).
  const shortTime = (time) =>
    typeof time === "string" ? time.replace("T", " ").replace(/\.\d+(?=Z|[+-]\d\d:\d\d$)/, "") : time;

  function setText(node, value) {
    if (node.textContent !== value) {
      node.textContent = value;
    }
  }

  // Brings `tbody` to one row per item, in order, keyed by the attribute `attr`. Rows still
  // there are updated in place (not rebuilt), so a button the operator is about to click
  // stays the same element across refreshes.
  function syncRows(tbody, items, { attr, key, columns, build, update }) {
    const existing = new Map();
    for (const row of Array.from(tbody.rows)) {
      existing.set(row.getAttribute(attr), row);
    }
    let previous = null;
    for (const item of items) {
      const id = key(item);
      let row = existing.get(id);
      if (row) {
        existing.delete(id);
      } else {
        row = document.createElement("tr");
        row.setAttribute(attr, id);
        for (const column of columns) {
          const td = document.createElement("td");
          td.dataset.field = column.field;
          if (column.num) {
            td.className = "num";
          }
          row.append(td);
        }
        if (build) {
          build(row, item);
        }
      }
      columns.forEach((column, index) => {
        const td = row.cells[index];
        setText(td, text(column.value(item)));
        if (column.title) {
          td.title = column.title(item);
        }
      });
      if (update) {
        update(row, item);
      }
      const expected = previous ? previous.nextElementSibling : tbody.firstElementChild;
      if (row !== expected) {
        tbody.insertBefore(row, expected);
      }
      previous = row;
    }
    for (const row of existing.values()) {
      row.remove();
    }
  }

  const SUBSCRIPTION_COLUMNS = [
    { field: "name", value: (s) => s.name },
    { field: "feed", value: (s) => s.feed },
    { field: "checkpoint", value: (s) => s.checkpoint, num: true },
    { field: "lag", value: (s) => s.lag, num: true },
    { field: "in_flight", value: (s) => s.in_flight, num: true },
    { field: "delivered", value: (s) => s.delivered, num: true },
    { field: "retried", value: (s) => s.retried, num: true },
    { field: "dead_letters", value: (s) => s.dead_letters, num: true },
  ];

  function renderSubscriptions(page) {
    const subscriptions = page.subscriptions;
    syncRows($("subscriptions-body"), subscriptions, {
      attr: "data-subscription",
      key: (s) => s.name,
      columns: SUBSCRIPTION_COLUMNS,
      update: (row, s) => row.classList.toggle("warn", s.dead_letters > 0),
    });
    $("subscriptions-empty").hidden = subscriptions.length > 0;
  }

  const DEAD_LETTER_COLUMNS = [
    { field: "subscription", value: (l) => l.subscription },
    { field: "event_type", value: (l) => l.event_type, title: (l) => `event ${l.event_id}` },
    { field: "partition_key", value: (l) => l.partition_key },
    { field: "error", value: (l) => l.error, title: (l) => l.error },
    { field: "attempts", value: (l) => l.attempts, num: true },
    { field: "held_back", value: (l) => l.held_back, num: true },
    { field: "failed_at", value: (l) => shortTime(l.failed_at), title: (l) => l.failed_at },
  ];

  function actionButton(action, label) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = action;
    button.textContent = label;
    return button;
  }

  function renderDeadLetters(page) {
    const letters = page.dead_letters;
    syncRows($("dead-letters-body"), letters, {
      attr: "data-dead-letter-id",
      key: (l) => l.id,
      columns: DEAD_LETTER_COLUMNS,
      build: (row) => {
        const actions = document.createElement("td");
        actions.className = "actions";
        actions.append(actionButton("redeliver", "Redeliver"), " ", actionButton("discard", "Discard"));
        row.append(actions);
      },
      update: (row, l) => {
        for (const button of row.querySelectorAll("button[data-action]")) {
          button.disabled = pending.has(l.id);
        }
      },
    });
    const count = $("dead-letter-count");
    setText(count, `${letters.length}${page.next_cursor ? "+" : ""}`);
    count.classList.toggle("alert", letters.length > 0);
    $("dead-letters-empty").hidden = letters.length > 0;
  }

  // --- Refresh ----------------------------------------------------------------------------

  async function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    refreshAgain = false;
    try {
      const [subscriptions, letters] = await Promise.all([
        api("GET", `/v1/subscriptions?limit=${PAGE}`),
        api("GET", `/v1/dead-letters?limit=${PAGE}`),
      ]);
      if (sessionStorage.getItem(TOKEN_KEY)) {
        renderSubscriptions(subscriptions);
        renderDeadLetters(letters);
        $("status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
        if (errorFromRefresh) {
          clearError();
        }
      }
    } catch (error) {
      handle(error, true);
    } finally {
      refreshing = false;
      // Asked for while this one was under way (after an action, or a new token).
      if (refreshAgain && sessionStorage.getItem(TOKEN_KEY)) {
        refresh();
      }
    }
  }

  async function act(action, id) {
    const path = `/v1/dead-letters/${encodeURIComponent(id)}`;
    pending.add(id);
    for (const button of document.querySelectorAll("#dead-letters-body button[data-action]")) {
      const row = button.closest("tr");
      button.disabled = pending.has(row.getAttribute("data-dead-letter-id"));
    }
    try {
      if (action === "redeliver") {
        await api("POST", `${path}/redeliver`);
      } else {
        await api("DELETE", path);
      }
      clearError();
      $("status").textContent = `${action === "redeliver" ? "Redelivered" : "Discarded"} ${id}`;
    } catch (error) {
      handle(error, false);
    } finally {
      pending.delete(id);
    }
    await refresh();
  }

  // --- Timeline and catalog ---------------------------------------------------------------

  let timelineCursor = null;
  let timelineQuery = null;
  // Each search's number: an answer to an older search than the latest is dropped.
  let timelineSearch = 0;

  function eventRow(item) {
    const event = item.event || {};
    const row = document.createElement("tr");
    row.dataset.position = String(item.position);
    row.dataset.eventId = text(event.id);
    const values = [
      ["position", item.position, "num"],
      ["type", event.type],
      ["key", event.meta && event.meta.partition_key],
      ["occurred_at", shortTime(event.occurred_at)],
    ];
    for (const [field, value, className] of values) {
      const td = document.createElement("td");
      td.dataset.field = field;
      if (className) {
        td.className = className;
      }
      td.textContent = text(value);
      row.append(td);
    }
    const payload = document.createElement("td");
    payload.dataset.field = "payload";
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(event.payload);
    payload.append(pre);
    row.append(payload);
    return row;
  }

  async function searchTimeline(more) {
    const status = $("timeline-status");
    const body = $("timeline-body");
    if (!more) {
      const params = new URLSearchParams({ order: "newest", limit: "50" });
      const value = $("timeline-value").value.trim();
      if (value) {
        params.set($("timeline-by").value, value);
      }
      timelineQuery = params;
      timelineCursor = null;
    }
    const params = new URLSearchParams(timelineQuery);
    if (more && timelineCursor) {
      params.set("cursor", timelineCursor);
    }
    status.textContent = "Searching…";
    const search = ++timelineSearch;
    try {
      const page = await api("GET", `/v1/events?${params}`);
      if (search !== timelineSearch) {
        return;
      }
      const rows = page.events.map(eventRow);
      if (more) {
        body.append(...rows);
      } else {
        body.replaceChildren(...rows);
      }
      timelineCursor = page.next_cursor || null;
      const shown = body.rows.length;
      status.textContent = shown === 0 ? "No events." : `${shown} event${shown === 1 ? "" : "s"}, newest first.`;
      if (timelineCursor) {
        const button = document.createElement("button");
        button.type = "button";
        button.id = "timeline-more";
        button.textContent = "More";
        button.addEventListener("click", () => searchTimeline(true));
        status.append(" ", button);
      }
    } catch (error) {
      if (search !== timelineSearch) {
        return;
      }
      if (!more) {
        body.replaceChildren();
      }
      // No store (409) or a bad parameter (400): the timeline's own business.
      if (error instanceof ApiError && (error.status === 409 || error.status === 400)) {
        status.textContent = error.message;
      } else {
        status.textContent = "";
        handle(error, false);
      }
    }
  }

  async function loadCatalog() {
    try {
      const catalog = await api("GET", "/v1/catalog");
      const rows = (catalog.events || []).map((event) => {
        const row = document.createElement("tr");
        row.dataset.event = `${event.name}@${event.version}`;
        let summary = event.description || "";
        if (event.deprecated) {
          summary = `Deprecated${typeof event.deprecated === "string" ? `: ${event.deprecated}` : ""}. ${summary}`;
        }
        for (const [field, value, className] of [
          ["name", event.name],
          ["version", event.version, "num"],
          ["summary", summary || "—"],
        ]) {
          const td = document.createElement("td");
          td.dataset.field = field;
          if (className) {
            td.className = className;
          }
          td.textContent = text(value);
          row.append(td);
        }
        return row;
      });
      $("catalog-body").replaceChildren(...rows);
    } catch (error) {
      handle(error, false);
    }
  }

  // --- Sign in and out --------------------------------------------------------------------

  function start() {
    $("token-form").hidden = true;
    $("dashboard").hidden = false;
    $("sign-out").hidden = false;
    refresh();
    loadCatalog();
    searchTimeline(false);
    clearInterval(timer);
    timer = setInterval(refresh, REFRESH_MS);
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(timer);
    timer = null;
    pending.clear();
    $("dashboard").hidden = true;
    $("sign-out").hidden = true;
    $("token-form").hidden = false;
    $("status").textContent = "";
    for (const id of ["subscriptions-body", "dead-letters-body", "timeline-body", "catalog-body"]) {
      $(id).replaceChildren();
    }
    $("timeline-status").textContent = "";
    $("dead-letter-count").textContent = "0";
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) {
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      $("token").value = "";
      clearError();
      start();
    });
    $("sign-out").addEventListener("click", () => {
      signOut();
      clearError();
    });
    $("dead-letters-body").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      const row = button && button.closest("tr[data-dead-letter-id]");
      if (row && !button.disabled) {
        act(button.dataset.action, row.getAttribute("data-dead-letter-id"));
      }
    });
    $("timeline-form").addEventListener("submit", (event) => {
      event.preventDefault();
      searchTimeline(false);
    });
    if (sessionStorage.getItem(TOKEN_KEY)) {
      start();
    }
  });
})();
