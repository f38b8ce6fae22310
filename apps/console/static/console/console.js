/* Cue agent console: sign up or in, the inbox (live over MQTT, or polled), suggestions per message, setup. */
"use strict";
(() => {
  // Where the site is rooted: "/" or an API Gateway stage ("/dev/"). Every URL below is built from it.
  const ROOT = document.body.dataset.root || "/";
  const url = (path) => ROOT + path.replace(/^\//, "");
  const POLL_FALLBACK_SECONDS = 15;
  const SEEN_EVENTS_KEPT = 1000;

  const state = {
    access: null, refresh: null, refreshTimer: null, me: null,
    conversations: new Map(), order: [], page: 1, hasMore: false,
    conversationId: null, conversation: null, messages: new Map(),
    suggestions: new Map(), results: new Map(),
    mqtt: null, wasConnected: false, pollTimer: null, pollSeconds: 0, seenEvents: new Set(),
    realtimeFailures: 0, replyWatch: new Map(),
    runsTimer: null, runsSeq: 0, runsActive: new Set(), runsPollMs: 3000, proposalsPage: 1, proposalsPageSize: 20, proposalsDecided: 0,
  };
  window.cueConsole = { state };  // for the browser tests' introspection

  const $ = (selector) => document.querySelector(selector);
  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("aria-") || key === "role" || key === "for") node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  };

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      const fields = error.fields || {};
      const first = Object.values(fields).flat()[0];
      super(first && !error.message ? String(first) : (error.message || `The server answered ${status}.`));
      this.status = status; this.code = error.code; this.fields = fields;
    }
    get detail() {
      const words = Object.values(this.fields).flat().join(" ");
      return words && !this.message.includes(words) ? `${this.message} ${words}` : this.message;
    }
  }

  // Entry and message bodies are HTML: shown as text (parsed inertly, never inserted as markup).
  const textOf = (html) => new DOMParser().parseFromString(String(html || ""), "text/html").body.textContent || "";

  async function api(path, { method = "GET", json, form, retried = false } = {}) {
    const headers = { Accept: "application/json" };
    if (state.access) headers.Authorization = `Bearer ${state.access}`;
    let body;
    if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
    if (form) body = form;
    let response;
    try { response = await fetch(url(path), { method, headers, body, credentials: "omit" }); }
    catch (error) { throw new ApiError(0, { error: { message: "Cue cannot be reached: check your connection." } }); }
    if (response.status === 401 && state.refresh && !retried && !path.startsWith("api/auth/")) {
      if (await refreshTokens()) return api(path, { method, json, form, retried: true });
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // A passing confirmation fades after a while; the realtime mode (#live-notice) stays while it holds.
  let noticeTimer = null;
  function notice(text, where = "#notice") {
    const box = $(where);
    box.textContent = text;
    box.hidden = !text;
    if (where === "#notice") {
      clearTimeout(noticeTimer);
      if (text) noticeTimer = setTimeout(() => { box.hidden = true; }, 10000);
    }
  }

  // ---------------------------------------------------------------- time
  function ago(iso) {
    if (!iso) return "";
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 45) return "just now";
    if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
    if (seconds < 7 * 86400) return `${Math.round(seconds / 86400)} d ago`;
    return new Date(iso).toLocaleDateString();
  }
  const timeEl = (iso) => (iso ? el("time", { dateTime: iso, title: new Date(iso).toLocaleString(), textContent: ago(iso) }) : null);
  setInterval(() => { for (const t of document.querySelectorAll("time[datetime]")) t.textContent = ago(t.dateTime); }, 30000);

  // ---------------------------------------------------------------- session (tokens kept in memory only)
  function jwtExpiry(token) {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp * 1000;
  }

  function setTokens(pair) {
    state.access = pair.access;
    if (pair.refresh) state.refresh = pair.refresh;
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refreshTokens, Math.max(5000, jwtExpiry(state.access) - Date.now() - 60000));
  }

  async function refreshTokens() {
    try {
      setTokens(await api("api/auth/token/refresh", { method: "POST", json: { refresh: state.refresh } }));
      return true;
    } catch (error) {
      signOut("Your session ended; please sign in again.");
      return false;
    }
  }

  async function enter(pair, { firstRun = false } = {}) {
    setTokens(pair);
    state.me = await api("api/me");
    $("#who").textContent = `${state.me.user.email} · ${state.me.workspace.name}`;
    const [connection, entries] = await Promise.all([
      api("api/integrations/intercom").catch(() => null),
      api("api/knowledge/entries?page_size=1").catch(() => null),
    ]);
    const needsSetup = firstRun || (connection && !connection.connected) || (entries && entries.count === 0);
    show(needsSetup ? "setup" : "inbox");
    // Only now: a section chosen meanwhile would be replaced by the one above.
    for (const id of ["#nav", "#signout"]) $(id).hidden = false;
    await loadConversations();
    connectRealtime();
  }

  function signOut(message = "") {
    if (state.refresh && state.access && !message) {
      api("api/auth/logout", { method: "POST", json: { refresh: state.refresh } }).catch(() => {});
    }
    clearTimeout(state.refreshTimer);
    clearTimeout(state.runsTimer);
    state.runsActive = new Set();
    stopPolling();
    if (state.mqtt) { state.mqtt.end(true); state.mqtt = null; }
    Object.assign(state, { access: null, refresh: null, me: null, conversationId: null, conversation: null, wasConnected: false });
    state.conversations.clear(); state.suggestions.clear(); state.messages.clear();
    setConnection("offline", "offline");
    for (const id of ["#nav", "#signout"]) $(id).hidden = true;
    $("#who").textContent = "";
    notice("");
    notice("", "#live-notice");
    $("#signin-error").textContent = message;
    show("auth");
  }

  function show(view) {
    for (const name of ["auth", "inbox", "knowledge", "proposals", "setup"]) $(`#${name}-view`).hidden = name !== view;
    for (const button of document.querySelectorAll("#nav button")) {
      button.setAttribute("aria-pressed", String(button.dataset.view === view));
    }
    if (view === "knowledge") loadEntries().catch(showError);
    if (view === "setup") loadSetup().catch(showError);
    if (view === "proposals") loadProposals().catch(showError);
  }
  const showError = (error) => notice(error.message || String(error));

  function fieldErrors(form, error) {
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    let placed = false;
    for (const [field, messages] of Object.entries((error && error.fields) || {})) {
      const slot = form.querySelector(`.field-error[data-for="${field}"]`);
      if (slot) { slot.textContent = [].concat(messages).join(" "); placed = true; }
    }
    return placed;
  }

  // ---------------------------------------------------------------- conversations
  const filters = () => ({ state: $("#filter-state").value, q: $("#filter-q").value.trim() });
  const seenKey = () => `cue.seen.${state.me ? state.me.workspace.id : ""}`;
  const seen = () => { try { return JSON.parse(localStorage.getItem(seenKey()) || "{}"); } catch (e) { return {}; } };
  function markSeen(c) {
    if (!c || !c.last_customer_message_at) return;
    const all = seen();
    all[c.id] = c.last_customer_message_at;
    try { localStorage.setItem(seenKey(), JSON.stringify(all)); } catch (e) { /* private mode: unread stays in memory */ }
  }
  const isUnread = (c) => Boolean(c.awaiting_reply && c.last_customer_message_at
    && String(c.id) !== String(state.conversationId) && (seen()[c.id] || "") < c.last_customer_message_at);

  function customerName(c) {
    const customer = c.customer || {};
    return customer.name || customer.email || "Unknown customer";
  }

  async function loadConversations({ append = false } = {}) {
    const { state: wanted, q } = filters();
    const page = append ? state.page + 1 : 1;
    const params = new URLSearchParams({ page: String(page), page_size: "50" });
    if (wanted) params.set("state", wanted);
    if (q) params.set("q", q);
    const body = await api(`api/conversations?${params}`);
    if (!append) { state.conversations.clear(); }
    for (const c of body.results) state.conversations.set(String(c.id), c);
    state.page = page;
    state.hasMore = Boolean(body.next);
    renderConversations();
  }

  function matchesFilters(c) {
    const { state: wanted, q } = filters();
    return (!wanted || c.state === wanted) && !q;  // a search is re-run by the server, not guessed here
  }

  function upsertConversation(c) {
    const key = String(c.id);
    const known = state.conversations.get(key);
    if (known && (known.updated_at || "") > (c.updated_at || "")) return;  // an older version arrived late
    if (matchesFilters(c)) state.conversations.set(key, { ...(known || {}), ...c });
    else state.conversations.delete(key);
    renderConversations();
    if (key === String(state.conversationId)) {
      state.conversation = { ...(state.conversation || {}), ...c };
      markSeen(state.conversation);  // open on screen: what the customer wrote is read
      renderThreadHead();
    }
  }

  function renderConversations() {
    const list = $("#conversations");
    const rows = [...state.conversations.values()].sort((a, b) =>
      String(b.updated_at_intercom || b.last_message_at || "").localeCompare(String(a.updated_at_intercom || a.last_message_at || "")) || b.id - a.id);
    state.order = rows.map((c) => String(c.id));
    $("#more").hidden = !state.hasMore;
    if (!rows.length) {
      const { state: wanted, q } = filters();
      const text = q ? `No conversation matches “${q}”. Try other words or show all states.`
        : wanted === "open" ? "No open conversations. New ones appear here as soon as a customer writes in Intercom; if none arrive, check Setup → Connect Intercom."
          : "Nothing here. Pick another state above.";
      list.replaceChildren(el("li", { className: "empty", textContent: text }));
      return;
    }
    list.replaceChildren(...rows.map((c) => {
      const unread = isUnread(c);
      const open = el("button", {
        type: "button", className: "conv",
        "aria-current": String(String(c.id) === String(state.conversationId)),
        "aria-label": `${customerName(c)}${unread ? ", unread" : ""}: ${c.last_message_text || "no messages"}`,
      },
      el("span", { className: "row1" },
        unread ? el("span", { className: "dot", "aria-hidden": "true" }) : null,
        el("strong", { className: "customer", textContent: customerName(c) }),
        timeEl(c.last_message_at || c.updated_at_intercom)),
      el("span", { className: "preview", textContent: c.last_message_text || "No messages yet" }),
      el("span", { className: "row3" },
        el("span", { className: "assignee", textContent: c.assignee_name || (c.assignee_id ? `Teammate ${c.assignee_id}` : "Unassigned") }),
        c.state !== "open" ? el("span", { className: `badge ${c.state}`, textContent: c.state }) : null));
      open.addEventListener("click", () => openConversation(c.id).then(() => {
        // One column on a phone: bring the thread into view.
        if (window.matchMedia("(max-width: 700px)").matches) $("#thread-head").scrollIntoView({ block: "start" });
      }).catch(showError));
      const item = el("li", { className: unread ? "unread" : "" }, open);
      item.dataset.id = c.id;
      return item;
    }));
  }

  async function openConversation(id) {
    state.conversationId = String(id);
    state.suggestions.clear();
    state.messages.clear();
    renderConversations();
    $("#no-conversation").hidden = true;
    await loadThread(id);  // first: each group of suggestions is headed by its message
    await loadSuggestions(id);
    markSeen(state.conversation);
    const row = document.querySelector(`#conversations li[data-id="${id}"] button`);
    if (row && document.activeElement && document.activeElement.closest("#conversations")) row.focus();
  }

  async function loadThread(id) {
    // The newest page of messages (a long conversation's start stays in Intercom).
    const conversation = await api(`api/conversations/${id}?page=last&page_size=100`);
    if (String(id) !== String(state.conversationId)) return;
    state.conversation = conversation;
    const page = conversation.messages || {};
    for (const m of page.results || []) state.messages.set(String(m.id), m);
    renderThreadHead();
    renderMessages();
    renderSuggestions();
  }

  function renderThreadHead() {
    const c = state.conversation;
    if (!c) return;
    $("#conversation-title").textContent = customerName(c);
    const bits = [c.customer && c.customer.email, c.state, c.assignee_name ? `assigned to ${c.assignee_name}` : (c.assignee_id ? `assigned to teammate ${c.assignee_id}` : "unassigned")];
    const meta = $("#conversation-meta");
    meta.replaceChildren(bits.filter(Boolean).join(" · "));
    if (c.intercom_url) meta.append(" · ", el("a", { href: c.intercom_url, target: "_blank", rel: "noopener", textContent: "Open in Intercom" }));
  }

  const MESSAGE_KINDS = { assignment: "Assigned", close: "Closed", open: "Reopened", snoozed: "Snoozed", away_mode_assignment: "Assigned" };

  function renderMessages() {
    const messages = [...state.messages.values()].sort((a, b) =>
      String(a.created_at_intercom || a.created_at).localeCompare(String(b.created_at_intercom || b.created_at)) || a.id - b.id);
    $("#messages").replaceChildren(...messages.map((m) => {
      const at = m.created_at_intercom || m.created_at;
      const text = m.body_text ?? textOf(m.body_html);
      if (m.kind !== "comment" && m.kind !== "note" && !text) {
        return el("li", { className: "msg event" }, `${MESSAGE_KINDS[m.kind] || m.kind}${m.author_name ? ` by ${m.author_name}` : ""} · `, timeEl(at));
      }
      const side = m.kind === "note" ? "note" : (m.is_from_customer ? "customer" : "agent");
      const who = side === "note" ? `Internal note · ${m.author_name || "Teammate"}` : (m.author_name || (m.is_from_customer ? "Customer" : "Teammate"));
      const item = el("li", { className: `msg ${side}` },
        el("span", { className: "author" }, `${who} · `, timeEl(at)),
        el("p", { className: "body", textContent: text }));
      item.dataset.id = m.id;
      return item;
    }));
    const last = $("#messages").lastElementChild;
    if (last) last.scrollIntoView({ block: "nearest" });
  }

  // ---------------------------------------------------------------- suggestions
  async function loadSuggestions(conversationId) {
    const body = await api(`api/conversations/${conversationId}/suggestions?page_size=100`);
    if (String(conversationId) !== String(state.conversationId)) return;
    for (const s of body.results) addSuggestion(s);
    renderSuggestions();
  }

  // One card per entry per message: the same entry for the same message (a retry, an event and a fetch) is one.
  function addSuggestion(s) {
    const key = `${s.message_id}:${s.entry_id ?? `s${s.id}`}`;
    const known = state.suggestions.get(key);
    state.suggestions.set(key, { ...(known || {}), ...s, status: s.status || (known && known.status) || "shown" });
  }

  const STOP = new Set("the and for you your are but not with this that have has was can how what when where why who from our out about into them they their there then than just get got does did do i me my we us a an to of in on at is it be or if so no yes hi hello thanks thank please will would could should".split(" "));
  const words = (text) => new Set((String(text).toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || []).filter((w) => !STOP.has(w)));
  function matchingWords(message, s) {
    if (!message) return [];
    const wanted = words(message.body_text || "");
    const found = words(`${s.title} ${textOf(s.body)}`);
    return [...wanted].filter((w) => found.has(w) || found.has(w.replace(/s$/, ""))).slice(0, 6);
  }

  function confidence(score) {
    if (score >= 0.5) return ["strong", "Strong match"];
    if (score >= 0.25) return ["good", "Good match"];
    if (score >= 0.1) return ["possible", "Possible match"];
    return ["weak", "Weak match"];
  }

  function renderSuggestions() {
    const groups = new Map();
    for (const s of state.suggestions.values()) {
      if (!groups.has(String(s.message_id))) groups.set(String(s.message_id), []);
      groups.get(String(s.message_id)).push(s);
    }
    // A message not loaded yet has just arrived (its suggestions came first): the newest.
    const when = (messageId) => { const m = state.messages.get(messageId); return m ? String(m.created_at_intercom || m.created_at) : "\uffff"; };
    const ordered = [...groups.entries()].sort(([a], [b]) => when(b).localeCompare(when(a)) || Number(b) - Number(a));
    $("#no-suggestions").hidden = ordered.length > 0;
    $("#suggestions").replaceChildren(...ordered.map(([messageId, items]) => {
      const message = state.messages.get(messageId);
      const quote = message ? (message.body_text || "").slice(0, 140) : "a new message (loading…)";
      const section = el("section", { className: "group", "aria-label": `Suggestions for: ${quote}` },
        el("h3", { className: "for" }, "For ", el("q", { textContent: quote }), " ", message ? timeEl(message.created_at_intercom || message.created_at) : null),
        el("ol", { className: "cards" }, ...items.sort((a, b) => a.rank - b.rank).map((s) => card(s, message))));
      section.dataset.message = messageId;
      return section;
    }));
  }

  function card(s, message) {
    const [level, label] = confidence(Number(s.score));
    const matched = matchingWords(message, s);
    const item = el("li", { className: `card suggestion ${s.status}` },
      el("h4", { textContent: s.title || "Untitled entry" }),
      el("p", { className: "why" },
        el("span", { className: `confidence ${level}`, textContent: label }),
        matched.length ? ` · matches ${matched.map((w) => `“${w}”`).join(", ")}` : " · similar in meaning"),
      el("p", { className: "answer", textContent: textOf(s.body) }));
    item.dataset.id = s.id;
    const result = el("p", { className: "result", role: "status" });
    const outcome = resultText(s);
    if (outcome) result.replaceChildren(...outcome);
    if (s.status === "shown") {
      const actions = el("div", { className: "actions", role: "group", "aria-label": `Actions for ${s.title}` });
      const button = (text, action, sendAs, cls = "") => {
        const b = el("button", { type: "button", textContent: text, className: cls });
        b.dataset.action = sendAs || action;
        b.addEventListener("click", () => feedback(s, action, sendAs, item));
        actions.append(b);
      };
      button("Send to Intercom", "accept", "reply", "primary");
      button("Insert as note", "accept", "note");
      button("Accept", "accept");
      button("Dismiss", "dismiss", undefined, "quiet");
      item.append(actions);
    }
    item.append(result);
    const error = state.results.get(String(s.id));
    if (error) item.append(el("p", { className: "error", role: "alert", textContent: error }));
    return item;
  }

  function resultText(s) {
    const reply = s.reply;
    if (s.status === "dismissed") return ["Dismissed."];
    if (s.status !== "accepted") return null;
    if (!s.sent_as) return ["Accepted: marked as used."];
    const what = s.sent_as === "note" ? "Note" : "Reply";
    if (!reply || reply.status === "pending") return [`${what} on its way to Intercom…`];
    if (reply.status === "sent") return [`${what} sent to Intercom.`];
    return null;  // failed: shown as an error
  }

  async function feedback(s, action, sendAs, item) {
    state.results.delete(String(s.id));
    for (const b of item.querySelectorAll(".actions button")) b.disabled = true;
    item.querySelector(".result").textContent = sendAs ? "Sending…" : "Saving…";
    try {
      const json = sendAs ? { action, send_as: sendAs } : { action };
      const updated = await api(`api/suggestions/${s.id}/feedback`, { method: "POST", json });
      addSuggestion(updated);
      if (updated.reply) watchReply(updated);
    } catch (error) {
      const what = sendAs === "reply" ? "Could not send to Intercom" : sendAs === "note" ? "Could not add the note" : "Could not save";
      state.results.set(String(s.id), `${what}: ${error.detail || error.message}`);
    }
    renderSuggestions();
  }

  // A sent reply is queued: its outcome (sent, or Intercom's refusal) is fetched until known.
  function watchReply(s) {
    clearTimeout(state.replyWatch.get(s.id));
    if (!s.reply || s.reply.status !== "pending") { noteReplyOutcome(s); return; }
    let tries = 0;
    const check = async () => {
      tries += 1;
      try {
        const body = await api(`api/conversations/${s.conversation_id}/suggestions?message=${s.message_id}&page_size=100`);
        const fresh = body.results.find((x) => x.id === s.id);
        if (fresh) { addSuggestion(fresh); if (String(fresh.conversation_id) === String(state.conversationId)) renderSuggestions(); }
        if (fresh && fresh.reply && fresh.reply.status !== "pending") { noteReplyOutcome(fresh); return; }
      } catch (error) { /* try again */ }
      if (tries < 60) state.replyWatch.set(s.id, setTimeout(check, Math.min(500 * tries, 3000)));
    };
    state.replyWatch.set(s.id, setTimeout(check, 300));
  }

  function noteReplyOutcome(s) {
    if (s.reply && s.reply.status === "failed") {
      const why = (s.reply.error || "Intercom gave no reason").replace(/[.\s]+$/, "");
      state.results.set(String(s.id), `Not sent. ${why}. Reply in Intercom instead.`);
      renderSuggestions();
    }
  }

  // ---------------------------------------------------------------- realtime (MQTT over WebSockets, else polling)
  function setConnection(status, text) {
    const badge = $("#connection");
    badge.textContent = text;
    badge.dataset.state = status;
    badge.className = `conn ${status}`;
  }

  function startPolling(seconds, why) {
    if (state.pollTimer && state.pollSeconds === seconds) return;
    stopPolling();
    state.pollSeconds = seconds;
    state.pollTimer = setInterval(() => catchUp().catch(() => {}), seconds * 1000);
    setConnection("polling", `refreshing every ${seconds} s`);
    if (why) notice(why, "#live-notice");
  }

  function stopPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = null;
    state.pollSeconds = 0;
  }

  async function connectRealtime() {
    let info;
    try { info = await api("api/realtime/connection"); }
    catch (error) {
      startPolling(POLL_FALLBACK_SECONDS, `Live updates are unavailable (${error.message}); the inbox refreshes every ${POLL_FALLBACK_SECONDS} seconds.`);
      setTimeout(() => { if (state.access && !state.mqtt) connectRealtime(); }, 60000);
      return;
    }
    if (!state.access) return;
    if (info.mode === "poll" || !info.url) {
      const seconds = info.poll_seconds || POLL_FALLBACK_SECONDS;
      startPolling(seconds, `Live updates are off on this server: the inbox refreshes every ${seconds} seconds.`);
      return;
    }
    const options = { clientId: info.client_id, reconnectPeriod: 2000, connectTimeout: 10000, clean: true, resubscribe: false };
    const credentials = info.credentials || {};
    if (credentials.username !== undefined) options.username = credentials.username;
    if (credentials.password !== undefined) options.password = credentials.password;
    const expiresAt = info.expires_at ? Date.parse(info.expires_at) : null;
    const client = window.mqtt.connect(info.url, options);
    state.mqtt = client;
    setConnection("connecting", "connecting…");
    client.on("connect", () => {
      state.realtimeFailures = 0;
      stopPolling();
      notice("", "#live-notice");
      setConnection("connected", "live");
      client.subscribe(info.topics || [], { qos: info.qos ?? 1 });
      if (state.wasConnected) catchUp().catch(() => {});  // what happened while away
      state.wasConnected = true;
    });
    client.on("close", () => {
      if (state.mqtt !== client || !state.access) return;
      state.realtimeFailures += 1;
      if (expiresAt && Date.now() > expiresAt - 30000) {  // its credential expired: ask for a fresh one
        client.end(true);
        state.mqtt = null;
        setTimeout(() => { if (state.access && !state.mqtt) connectRealtime(); }, 1000);
        return;
      }
      if (state.realtimeFailures >= 3) {
        startPolling(POLL_FALLBACK_SECONDS);
        setConnection("polling", `offline: refreshing every ${POLL_FALLBACK_SECONDS} s`);
      } else {
        setConnection("reconnecting", "reconnecting…");
      }
    });
    client.on("message", (topic, payload) => onEvent(payload));
  }

  async function catchUp() {
    await loadConversations();
    if (state.conversationId) {
      const id = state.conversationId;
      await loadThread(id);
      await loadSuggestions(id);
    }
  }

  function onEvent(payload) {
    let event;
    try { event = JSON.parse(new TextDecoder().decode(payload)); } catch (error) { return; }
    if (!event || typeof event !== "object") return;
    if (event.event_id) {
      if (state.seenEvents.has(event.event_id)) return;
      state.seenEvents.add(event.event_id);
      if (state.seenEvents.size > SEEN_EVENTS_KEPT) state.seenEvents.delete(state.seenEvents.values().next().value);
    }
    const open = String(event.conversation_id) === String(state.conversationId);
    if (event.type === "conversation" && event.conversation) {
      if (filters().q) loadConversations().catch(() => {});
      else upsertConversation(event.conversation);
    } else if (event.type === "message" && event.message) {
      const known = state.conversations.get(String(event.conversation_id));
      if (!known && !filters().q) loadConversations().catch(() => {});
      if (open) {
        state.messages.set(String(event.message.id), event.message);
        renderMessages();
        renderSuggestions();
        markSeen(state.conversation);
      }
    } else if (event.type === "suggestions" && open) {
      for (const s of event.suggestions || []) {
        addSuggestion({ ...s, message_id: event.message_id, conversation_id: event.conversation_id, status: s.status || "shown" });
      }
      if (!state.messages.has(String(event.message_id))) loadThread(state.conversationId).then(renderSuggestions).catch(() => {});
      renderSuggestions();
    } else if (event.type === "suggestions" && !state.conversations.has(String(event.conversation_id))) {
      loadConversations().catch(() => {});
    }
  }

  // ---------------------------------------------------------------- knowledge base
  async function loadEntries(q = "") {
    const body = await api(`api/knowledge/entries${q ? `?q=${encodeURIComponent(q)}` : ""}`);
    const list = $("#entries");
    if (!body.results.length) {
      list.replaceChildren(el("li", { className: "empty", textContent: q ? "No entry matches; try other words." : "No entries yet: write one below, or import a file in Setup." }));
      return;
    }
    list.replaceChildren(...body.results.map((entry) => {
      const edit = el("button", { type: "button", className: "entry" }, entry.title,
        entry.source === "intercom_article" ? el("span", { className: "meta", textContent: " · from the Help Center" }) : null);
      edit.addEventListener("click", () => editEntry(entry));
      return el("li", {}, edit);
    }));
  }

  function editEntry(entry) {
    const form = $("#entry-form");
    form.elements.id.value = entry ? entry.id : "";
    form.elements.title.value = entry ? entry.title : "";
    form.elements.body.value = entry ? (entry.body_text ?? textOf(entry.body)) : "";
    $("#entry-form-title").textContent = entry ? `Edit “${entry.title}”` : "Add an entry";
    fieldErrors(form, null);
    $("#entry-error").textContent = "";
    form.elements.title.focus();
  }

  async function saveEntry(event) {
    event.preventDefault();
    const form = event.currentTarget;
    fieldErrors(form, null);
    $("#entry-error").textContent = "";
    const id = form.elements.id.value;
    const json = { title: form.elements.title.value, body: form.elements.body.value };
    try {
      await api(id ? `api/knowledge/entries/${id}` : "api/knowledge/entries", { method: id ? "PATCH" : "POST", json });
      editEntry(null);
      await loadEntries();
      notice(id ? "Entry saved." : "Entry added: Cue suggests it from now on.");
    } catch (error) {
      if (!fieldErrors(form, error)) $("#entry-error").textContent = error.message;
    }
  }

  // ---------------------------------------------------------------- setup (first run)
  async function loadSetup() {
    $("#sync-controls").hidden = !isManager();
    const [connection] = await Promise.all([api("api/integrations/intercom"), loadSetupCounts(), loadRuns()]);
    renderConnection(connection);
  }

  async function loadSetupCounts() {
    const entries = await api("api/knowledge/entries?page_size=1");
    $("#knowledge-status").textContent = entries.count
      ? `${entries.count} ${entries.count === 1 ? "entry" : "entries"} in your knowledge base.`
      : "Your knowledge base is empty: Cue suggests nothing until it has answers.";
  }

  function renderConnection(connection) {
    const status = $("#connect-status");
    if (connection && connection.connected) {
      status.replaceChildren(`Connected to Intercom workspace ${connection.app_id} (${connection.region}). Intercom's webhooks go to `,
        el("code", { textContent: connection.webhook_url }), ".");
    } else {
      status.textContent = "Not connected yet: paste an access token from your Intercom app.";
    }
  }

  async function connectIntercom(event) {
    event.preventDefault();
    const form = event.currentTarget;
    fieldErrors(form, null);
    $("#connect-error").textContent = "";
    const json = {};
    for (const name of ["access_token", "client_secret", "app_id", "region"]) {
      const value = form.elements[name].value.trim();
      if (value) json[name] = value;
    }
    try {
      const connection = await api("api/integrations/intercom", { method: "PUT", json });
      form.reset();
      renderConnection(connection);
      notice("Intercom is connected: new conversations arrive in the inbox.");
    } catch (error) {
      if (!fieldErrors(form, error)) $("#connect-error").textContent = error.message;
    }
  }

  async function importFile(event) {
    event.preventDefault();
    const out = $("#import-result");
    try {
      const result = await api("api/knowledge/import", { method: "POST", form: new FormData(event.currentTarget) });
      const errors = (result.rows || []).filter((r) => r.status === "error").length;
      out.textContent = `Imported: ${result.created} new, ${result.updated} updated${errors ? `, ${errors} rows with errors` : ""}.`;
      await loadSetup();
    } catch (error) {
      out.textContent = `Import failed: ${error.detail || error.message}`;
    }
  }

  async function trySuggestion(event) {
    event.preventDefault();
    const out = $("#try-results");
    const text = event.currentTarget.elements.text.value;
    try {
      const { results } = await api("api/knowledge/rank", { method: "POST", json: { text, limit: 3 } });
      const message = { body_text: text };
      out.replaceChildren(results.length
        ? el("ol", { className: "cards" }, ...results.map((r) => {
          const [level, label] = confidence(r.score);
          const matched = matchingWords(message, r);
          return el("li", { className: "card suggestion" }, el("h4", { textContent: r.title }),
            el("p", { className: "why" }, el("span", { className: `confidence ${level}`, textContent: label }),
              matched.length ? ` · matches ${matched.map((w) => `“${w}”`).join(", ")}` : ""),
            el("p", { className: "answer", textContent: textOf(r.body) }));
        }))
        : el("p", { className: "empty", textContent: "No entry answers this yet: add one in the knowledge base." }));
    } catch (error) {
      out.replaceChildren(el("p", { className: "error", role: "alert", textContent: error.message }));
    }
  }

  // ---------------------------------------------------------------- Help Center sync and history import (Setup)
  const RUN_KINDS = { articles: ["Help Center sync", "articles"], history: ["History import", "conversations"] };
  const RUN_STATUS = { running: "running", waiting: "waiting for Intercom's rate limit", succeeded: "finished", failed: "failed" };
  const runActive = (run) => run.status === "running" || run.status === "waiting";
  const isManager = () => Boolean(state.me && ["owner", "admin"].includes(state.me.role));

  function inWords(seconds) {
    if (seconds === null || seconds === undefined) return "time left unknown";
    if (seconds < 60) return "less than a minute left";
    if (seconds < 5400) { const m = Math.round(seconds / 60); return `about ${m} minute${m === 1 ? "" : "s"} left`; }
    const h = Math.round(seconds / 3600);
    return `about ${h} hour${h === 1 ? "" : "s"} left`;
  }

  // Refreshed every few seconds while a run is going (and the page is signed in), then left alone. While a
  // refresh is in flight `runsTimer` still holds the spent timer: null means nothing is being followed.
  async function loadRuns() {
    clearTimeout(state.runsTimer);
    const seq = ++state.runsSeq;  // a newer refresh (a click meanwhile) supersedes this one: one timer at most
    const again = (going) => (going && state.access ? setTimeout(() => loadRuns().catch(() => {}), state.runsPollMs) : null);
    let body;
    try { body = await api("api/integrations/intercom/sync"); }
    catch (error) { if (seq === state.runsSeq) state.runsTimer = again(state.runsActive.size); throw error; }  // a blip
    if (seq !== state.runsSeq) return;
    const runs = body.results.slice(0, 4);
    const active = new Set(runs.filter(runActive).map((run) => run.id));
    renderRuns(runs);
    // A run ended since the last look (or one started here already did): the entry count changed, and the
    // end is announced (the panel itself is not a live region: it would speak every few seconds).
    const ended = runs.filter((run) => state.runsActive.has(run.id) && !active.has(run.id));
    if (ended.length) {
      loadSetupCounts().catch(() => {});
      notice(ended.map((run) => `${(RUN_KINDS[run.kind] || [run.kind])[0]} ${RUN_STATUS[run.status] || run.status}: `
        + `${run.done} of ${run.total ?? run.done} done, ${run.errors} error${run.errors === 1 ? "" : "s"}.`).join(" "));
    }
    state.runsActive = active;
    state.runsTimer = again(active.size);
  }

  function renderRuns(runs) {
    $("#runs-title").hidden = !runs.length;
    $("#sync-runs").replaceChildren(...runs.map((run) => {
      const [label, items] = RUN_KINDS[run.kind] || [run.kind, "items"];
      const titleId = `run-${run.id}-title`;
      const total = run.total ?? null;
      const bar = el("div", { className: "bar-track", role: "progressbar", "aria-labelledby": titleId, "aria-valuemin": "0",
        "aria-valuetext": total === null ? `${run.done} ${items} so far` : `${run.done} of ${total} ${items}` },
      el("span", { className: "bar-fill" }));
      if (total !== null) {
        bar.setAttribute("aria-valuemax", String(total));
        bar.setAttribute("aria-valuenow", String(Math.min(run.done, total)));
        bar.firstChild.style.width = `${total ? Math.min(100, (100 * run.done) / total) : 100}%`;
      } else bar.classList.add("indeterminate");
      const facts = [total === null ? `${run.done} ${items} so far` : `${run.done} of ${total} ${items}`];
      if (runActive(run)) facts.push(`${Number(run.rate || 0).toFixed(1)} per second`, inWords(run.eta_seconds));
      facts.push(`${run.errors} error${run.errors === 1 ? "" : "s"}`);
      const item = el("li", { className: `run ${run.status}` },
        el("p", { className: "run-title", id: titleId }, el("strong", { textContent: label }),
          run.kind === "history" && run.params && run.params.days ? ` (last ${run.params.days} days)` : "",
          ` · ${RUN_STATUS[run.status] || run.status} · `, timeEl(run.created_at)),
        bar,
        el("p", { className: "run-facts", textContent: facts.join(" · ") }));
      if (run.last_error && (run.errors || run.status === "failed")) {
        item.append(el("p", { className: "error", textContent: `Last error: ${run.last_error}` }));
      }
      item.dataset.id = run.id;
      item.dataset.status = run.status;
      return item;
    }));
  }

  async function startSync(json, button) {
    const form = $("#history-form");
    fieldErrors(form, null);
    $("#sync-error").textContent = "";
    button.disabled = true;
    try {
      const { runs } = await api("api/integrations/intercom/sync", { method: "POST", json });
      notice(`${runs.map((r) => (RUN_KINDS[r.kind] || [r.kind])[0]).join(" and ")} started.`);
      for (const run of runs) state.runsActive.add(run.id);
      await loadRuns();
    } catch (error) {
      if (!fieldErrors(form, error)) $("#sync-error").textContent = `Not started: ${error.detail || error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- proposed entries
  // Pages count from the still-proposed ones: once some were decided here, the next page would skip as many.
  // Then "Load more" asks again from the start for what is shown plus a page (one request, same order).
  async function loadProposals({ append = false } = {}) {
    const list = $("#proposals");
    const shown = list.querySelectorAll("li.proposal:not(.accepted)").length;
    if (append && state.proposalsDecided) {
      append = false;
      state.proposalsPageSize = Math.min(200, shown + 20);
    } else if (!append) state.proposalsPageSize = 20;
    const page = append ? state.proposalsPage + 1 : 1;
    const body = await api(`api/knowledge/proposals?page=${page}&page_size=${state.proposalsPageSize}`);
    state.proposalsPage = page;
    state.proposalsDecided = 0;
    $("#proposals-more").hidden = !body.next;
    $("#proposals-role").textContent = isManager() ? "Accept one to add it to the knowledge base, or dismiss it."
      : "Owners and admins can accept or dismiss them.";
    const known = new Set([...list.querySelectorAll("li.proposal")].map((li) => li.dataset.id));
    const items = body.results.filter((p) => !append || !known.has(String(p.id))).map(proposalItem);
    if (append) list.append(...items);
    else list.replaceChildren(...items);
    if (!list.querySelector("li.proposal")) {
      list.replaceChildren(el("li", { className: "empty", textContent: "No proposed entries. Cue proposes one when your team has sent the same reply in several conversations and no entry holds it: import your history in Setup." }));
    }
  }

  function proposalItem(p) {
    const titleId = `proposal-${p.id}-title`;
    const examples = (p.example_questions || []).filter(Boolean);
    const item = el("li", { className: "card proposal" },
      el("h3", { id: titleId, textContent: p.title || "Untitled reply" }),
      el("p", { className: "meta", textContent: `Sent in ${p.times_sent} conversation${p.times_sent === 1 ? "" : "s"}` }),
      el("p", { className: "answer", textContent: p.body_text ?? textOf(p.body) }),
      examples.length ? el("div", { className: "examples" }, el("p", { textContent: "Asked as:" }),
        el("ul", {}, ...examples.slice(0, 5).map((q) => el("li", {}, el("q", { textContent: String(q) }))))) : null);
    item.dataset.id = p.id;
    const result = el("p", { className: "result", role: "status" });
    if (isManager()) {
      const actions = el("div", { className: "actions", role: "group", "aria-label": `Decide on ${p.title}` });
      for (const [text, action, cls] of [["Accept", "accept", "primary"], ["Dismiss", "dismiss", "quiet"]]) {
        const b = el("button", { type: "button", textContent: text, className: cls, "aria-describedby": titleId });
        b.dataset.action = action;
        b.addEventListener("click", () => decideProposal(p, action, item));
        actions.append(b);
      }
      item.append(actions);
    }
    item.append(result);
    return item;
  }

  async function decideProposal(p, action, item) {
    const buttons = item.querySelectorAll(".actions button");
    for (const b of buttons) b.disabled = true;
    const old = item.querySelector(".error");
    if (old) old.remove();
    const result = item.querySelector(".result");
    result.textContent = "Saving…";
    try {
      const answer = await api(`api/knowledge/proposals/${p.id}/${action}`, { method: "POST", json: {} });
      state.proposalsDecided += 1;
      if (action === "dismiss") {
        const next = item.nextElementSibling || item.previousElementSibling;
        item.remove();
        notice(`Dismissed “${p.title}”: it is not proposed again.`);
        const focus = next && (next.querySelector(".actions button") || next);
        if (focus && focus.focus) focus.focus();
        if (!$("#proposals li.proposal")) loadProposals().catch(showError);
        return;
      }
      item.classList.add("accepted");
      item.querySelector(".actions").remove();
      const open = el("button", { type: "button", className: "link", textContent: "Open it in the knowledge base" });
      open.addEventListener("click", () => { show("knowledge"); editEntry(answer); });
      result.replaceChildren(`Added to the knowledge base as “${answer.title}”: Cue suggests it from now on. `, open);
      open.focus();
    } catch (error) {
      if (error.status === 409) state.proposalsDecided += 1;  // decided elsewhere: no longer in the pages
      result.textContent = "";
      for (const b of buttons) b.disabled = false;
      item.append(el("p", { className: "error", role: "alert", textContent: `Could not ${action}: ${error.detail || error.message}` }));
    }
  }

  // ---------------------------------------------------------------- keyboard
  function firstOpenCard() { return document.querySelector("#suggestions li.suggestion.shown"); }
  function moveConversation(step) {
    if (!state.order.length) return;
    const at = state.order.indexOf(String(state.conversationId));
    const next = at < 0 ? 0 : Math.min(state.order.length - 1, Math.max(0, at + step));
    openConversation(state.order[next]).then(() => {
      const row = document.querySelector(`#conversations li[data-id="${state.order[next]}"] button`);
      if (row) row.focus();
    }).catch(showError);
  }
  function toggleHelp(force) {
    const help = $("#help");
    help.hidden = force === undefined ? !help.hidden : !force;
    $("#help-toggle").setAttribute("aria-expanded", String(!help.hidden));
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { toggleHelp(false); return; }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
    if ($("#inbox-view").hidden) return;
    const cardAction = (action) => {
      const button = firstOpenCard() && firstOpenCard().querySelector(`button[data-action="${action}"]`);
      if (button) { event.preventDefault(); button.click(); }
    };
    switch (event.key) {
      case "j": event.preventDefault(); moveConversation(1); break;
      case "k": event.preventDefault(); moveConversation(-1); break;
      case "a": cardAction("accept"); break;
      case "s": cardAction("reply"); break;
      case "d": cardAction("dismiss"); break;
      case "/": event.preventDefault(); $("#filter-q").focus(); break;
      default: break;
    }
  });

  // ---------------------------------------------------------------- wiring (every form handled here: none submits natively)
  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    $("#signin-error").textContent = "";
    try {
      await enter(await api("api/auth/token", { method: "POST", json: { email: form.elements.email.value, password: form.elements.password.value } }));
      form.reset();
    } catch (error) { $("#signin-error").textContent = error.message; }
  });
  $("#signup-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    $("#signup-error").textContent = "";
    fieldErrors(form, null);
    const json = { workspace_name: form.elements.workspace_name.value, email: form.elements.email.value, password: form.elements.password.value };
    try {
      await enter(await api("api/auth/signup", { method: "POST", json }), { firstRun: true });
      form.reset();
    } catch (error) { if (!fieldErrors(form, error)) $("#signup-error").textContent = error.message; }
  });
  $("#signout").addEventListener("click", () => signOut());
  $("#help-toggle").addEventListener("click", () => toggleHelp());
  for (const button of document.querySelectorAll("#nav button, [data-goto]")) {
    button.addEventListener("click", () => show(button.dataset.view || button.dataset.goto));
  }
  $("#filters").addEventListener("submit", (event) => { event.preventDefault(); loadConversations().catch(showError); });
  $("#filter-state").addEventListener("change", () => loadConversations().catch(showError));
  $("#more").addEventListener("click", () => loadConversations({ append: true }).catch(showError));
  $("#kb-search").addEventListener("submit", (event) => { event.preventDefault(); loadEntries(event.currentTarget.elements.q.value).catch(showError); });
  $("#entry-form").addEventListener("submit", saveEntry);
  $("#entry-new").addEventListener("click", () => editEntry(null));
  $("#connect-form").addEventListener("submit", connectIntercom);
  $("#import-form").addEventListener("submit", importFile);
  $("#try-form").addEventListener("submit", trySuggestion);
  $("#sync-articles").addEventListener("click", (event) => startSync({ articles: true }, event.currentTarget));
  $("#history-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const raw = event.currentTarget.elements.history_days.value.trim();  // anything else: the server names the problem
    startSync({ history_days: /^[0-9]+$/.test(raw) ? Number(raw) : raw || null }, event.submitter || $("#history-form button"));
  });
  $("#proposals-more").addEventListener("click", () => loadProposals({ append: true }).catch(showError));
  document.body.classList.add("ready");  // the bench's "interactive" mark: every handler is attached
})();
