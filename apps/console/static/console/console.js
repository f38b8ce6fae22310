/* Cue agent console: sign in, open conversations, live suggestions over MQTT, feedback, knowledge base. */
"use strict";
(() => {
  const state = {
    access: null, refresh: null, refreshTimer: null, me: null,
    conversationId: null, mqtt: null, wasConnected: false, suggestions: new Map(),
  };
  const $ = (selector) => document.querySelector(selector);
  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    for (const child of children) node.append(child);
    return node;
  };

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `HTTP ${status}`);
      this.status = status; this.code = error.code; this.fields = error.fields || {};
    }
  }

  // Entry bodies are HTML: show their text (parsed inertly, never inserted as markup).
  const textOf = (html) => new DOMParser().parseFromString(String(html || ""), "text/html").body.textContent || "";

  function jwtExpiry(token) {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp * 1000;
  }

  async function api(path, { method = "GET", json, form, retried = false } = {}) {
    const headers = {};
    if (state.access) headers.Authorization = `Bearer ${state.access}`;
    let body;
    if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
    if (form) body = form;
    const response = await fetch(path, { method, headers, body });
    if (response.status === 401 && state.refresh && !retried && !path.startsWith("/api/auth/")) {
      if (await refreshTokens()) return api(path, { method, json, form, retried: true });
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // ---------------------------------------------------------------- session (tokens kept in memory only)
  function setTokens(pair) {
    state.access = pair.access;
    if (pair.refresh) state.refresh = pair.refresh;
    clearTimeout(state.refreshTimer);
    const wait = Math.max(5000, jwtExpiry(state.access) - Date.now() - 60000);
    state.refreshTimer = setTimeout(refreshTokens, wait);
  }

  async function refreshTokens() {
    try {
      setTokens(await api("/api/auth/token/refresh", { method: "POST", json: { refresh: state.refresh } }));
      return true;
    } catch (error) {
      signOut("Your session ended; please sign in again.");
      return false;
    }
  }

  async function signIn(email, password) {
    setTokens(await api("/api/auth/token", { method: "POST", json: { email, password } }));
    state.me = await api("/api/me");
    $("#who").textContent = `${state.me.user.email} · ${state.me.workspace.name}`;
    show("inbox");
    for (const id of ["#nav", "#signout"]) $(id).hidden = false;
    await loadConversations();
    connectRealtime();
  }

  function signOut(message = "") {
    const refresh = state.refresh;
    if (refresh && state.access && !message) {
      api("/api/auth/logout", { method: "POST", json: { refresh } }).catch(() => {});
    }
    clearTimeout(state.refreshTimer);
    Object.assign(state, { access: null, refresh: null, me: null, conversationId: null, wasConnected: false });
    if (state.mqtt) { state.mqtt.end(true); state.mqtt = null; }
    setConnection("offline");
    for (const id of ["#nav", "#signout"]) $(id).hidden = true;
    $("#who").textContent = "";
    $("#signin-error").textContent = message;
    show("signin");
  }

  function show(view) {
    for (const name of ["signin", "inbox", "knowledge"]) $(`#${name}-view`).hidden = name !== view;
    for (const button of document.querySelectorAll("#nav button")) {
      button.setAttribute("aria-pressed", String(button.dataset.view === view));
    }
    if (view === "knowledge") loadEntries();
  }

  // ---------------------------------------------------------------- conversations
  async function loadConversations() {
    const page = await api("/api/conversations?state=open");
    const list = $("#conversations");
    list.replaceChildren(...page.results.map((c) => {
      const item = el("li", { tabIndex: 0, textContent: conversationLabel(c) });
      item.dataset.id = c.id;
      if (String(c.id) === String(state.conversationId)) item.setAttribute("aria-current", "true");
      const open = () => openConversation(c.id);
      item.addEventListener("click", open);
      item.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
      return item;
    }));
    if (!page.results.length) list.replaceChildren(el("li", { className: "empty", textContent: "No open conversations." }));
  }

  function conversationLabel(c) {
    const who = (c.customer && (c.customer.name || c.customer.email)) || c.customer_name || c.customer_email || "Customer";
    return `${who} · #${c.intercom_id}`;
  }

  async function openConversation(id) {
    state.conversationId = id;
    for (const item of document.querySelectorAll("#conversations li")) {
      item.toggleAttribute("aria-current", item.dataset.id === String(id));
      if (item.dataset.id === String(id)) item.setAttribute("aria-current", "true");
    }
    const conversation = await api(`/api/conversations/${id}`);
    $("#conversation-title").textContent = conversationLabel(conversation);
    const messages = conversation.messages || {};
    renderMessages(Array.isArray(messages) ? messages : messages.results || []);
    state.suggestions = new Map();
    await loadSuggestions(id);
  }

  async function refreshMessages(id) {
    const conversation = await api(`/api/conversations/${id}`).catch(() => null);
    if (!conversation || String(id) !== String(state.conversationId)) return;
    const messages = conversation.messages || {};
    renderMessages(Array.isArray(messages) ? messages : messages.results || []);
  }

  function renderMessages(messages) {
    $("#messages").replaceChildren(...messages.map((m) => el("li", {},
      el("span", { className: "author", textContent: `${m.author_name || m.author_type || ""} · ${m.kind || ""}` }),
      el("span", { textContent: m.body_text ?? m.body ?? "" }))));
  }

  async function loadSuggestions(conversationId) {
    const page = await api(`/api/conversations/${conversationId}/suggestions`);
    for (const s of page.results) state.suggestions.set(s.id, s);
    renderSuggestions();
  }

  function renderSuggestions() {
    const items = [...state.suggestions.values()].sort((a, b) => (b.message_id || 0) - (a.message_id || 0) || a.rank - b.rank);
    $("#no-suggestions").hidden = items.length > 0;
    $("#suggestions").replaceChildren(...items.map((s) => {
      const item = el("li", { className: s.status || "shown" },
        el("strong", { textContent: s.title || `Entry ${s.entry_id}` }),
        el("span", { className: "score", textContent: ` score ${Number(s.score).toFixed(2)} · ${s.status || "shown"}` }),
        el("p", { textContent: s.body_text || textOf(s.body) }));
      item.dataset.id = s.id;
      if (!s.status || s.status === "shown") {
        const actions = el("div", { className: "actions" });
        const button = (label, action, sendAs) => {
          const b = el("button", { type: "button", textContent: label });
          b.addEventListener("click", () => feedback(s, action, sendAs));
          actions.append(b);
        };
        button("Accept", "accept");
        button("Send to Intercom", "accept", "reply");
        button("Insert as note", "accept", "note");
        button("Dismiss", "dismiss");
        item.append(actions);
      }
      return item;
    }));
  }

  async function feedback(suggestion, action, sendAs) {
    const json = sendAs ? { action, send_as: sendAs } : { action };
    const updated = await api(`/api/suggestions/${suggestion.id}/feedback`, { method: "POST", json });
    state.suggestions.set(suggestion.id, { ...suggestion, ...(updated || {}), status: (updated && updated.status) || (action === "accept" ? "accepted" : "dismissed") });
    renderSuggestions();
  }

  // ---------------------------------------------------------------- realtime
  function setConnection(status) {
    const badge = $("#connection");
    badge.textContent = status;
    badge.className = `conn ${status}`;
  }

  async function connectRealtime() {
    let info;
    try { info = await api("/api/realtime/connection"); } catch (error) { setConnection("offline"); return; }
    const options = { clientId: info.client_id, reconnectPeriod: 2000, connectTimeout: 10000, clean: true };
    const credentials = info.credentials || {};
    if (credentials.username !== undefined) options.username = credentials.username;
    if (credentials.password !== undefined) options.password = credentials.password;
    const client = window.mqtt.connect(info.url, options);
    state.mqtt = client;
    setConnection("reconnecting");
    client.on("connect", () => {
      setConnection("connected");
      client.subscribe(info.topics || [], { qos: 1 });
      if (state.wasConnected) catchUp();
      state.wasConnected = true;
    });
    client.on("reconnect", () => setConnection("reconnecting"));
    client.on("offline", () => setConnection("offline"));
    client.on("close", () => { if (state.mqtt === client && state.access) setConnection("reconnecting"); });
    client.on("error", () => setConnection("reconnecting"));
    client.on("message", (topic, payload) => onEvent(topic, payload));
  }

  async function catchUp() {
    await loadConversations().catch(() => {});
    if (state.conversationId) await loadSuggestions(state.conversationId).catch(() => {});
  }

  function onEvent(topic, payload) {
    let event;
    try { event = JSON.parse(new TextDecoder().decode(payload)); } catch (error) { return; }
    if (event.type === "suggestions" && String(event.conversation_id) === String(state.conversationId)) {
      for (const s of event.suggestions || []) {
        if (!state.suggestions.has(s.id)) state.suggestions.set(s.id, { ...s, message_id: event.message_id, status: "shown" });
      }
      renderSuggestions();
      refreshMessages(state.conversationId);
    } else if (event.type === "message" || event.type === "conversation") {
      loadConversations().catch(() => {});
      if (String(event.conversation_id) === String(state.conversationId)) openConversation(state.conversationId).catch(() => {});
    }
  }

  // ---------------------------------------------------------------- knowledge base
  async function loadEntries(q = "") {
    const page = await api(`/api/knowledge/entries${q ? `?q=${encodeURIComponent(q)}` : ""}`);
    $("#entries").replaceChildren(...page.results.map((entry) => {
      const item = el("li", { tabIndex: 0 }, el("strong", { textContent: entry.title }));
      const edit = () => editEntry(entry);
      item.addEventListener("click", edit);
      item.addEventListener("keydown", (e) => { if (e.key === "Enter") edit(); });
      return item;
    }));
  }

  function editEntry(entry) {
    const form = $("#entry-form");
    form.elements.id.value = entry ? entry.id : "";
    form.elements.title.value = entry ? entry.title : "";
    form.elements.body.value = entry ? (entry.body_text ?? entry.body ?? "") : "";
    $("#entry-form-title").textContent = entry ? `Edit “${entry.title}”` : "Add an entry";
    clearFieldErrors();
    form.elements.title.focus();
  }

  function clearFieldErrors() {
    for (const p of document.querySelectorAll("#entry-form .field-error")) p.textContent = "";
    $("#entry-error").textContent = "";
  }

  async function saveEntry(event) {
    event.preventDefault();
    const form = event.target;
    clearFieldErrors();
    const id = form.elements.id.value;
    const json = { title: form.elements.title.value, body: form.elements.body.value };
    try {
      await api(id ? `/api/knowledge/entries/${id}` : "/api/knowledge/entries", { method: id ? "PATCH" : "POST", json });
      editEntry(null);
      await loadEntries();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      let placed = false;
      for (const [field, messages] of Object.entries(error.fields)) {
        const slot = form.querySelector(`.field-error[data-for="${field}"]`);
        if (slot) { slot.textContent = [].concat(messages).join(" "); placed = true; }
      }
      if (!placed) $("#entry-error").textContent = error.message;
    }
  }

  async function importFile(event) {
    event.preventDefault();
    const data = new FormData(event.target);
    try {
      const result = await api("/api/knowledge/import", { method: "POST", form: data });
      $("#import-result").textContent = JSON.stringify(result, null, 2);
      await loadEntries();
    } catch (error) {
      $("#import-result").textContent = error.message;
    }
  }

  // ---------------------------------------------------------------- wiring
  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    $("#signin-error").textContent = "";
    try { await signIn(form.elements.email.value, form.elements.password.value); form.reset(); }
    catch (error) { $("#signin-error").textContent = error.message; }
  });
  $("#signout").addEventListener("click", () => signOut());
  for (const button of document.querySelectorAll("#nav button")) button.addEventListener("click", () => show(button.dataset.view));
  $("#kb-search").addEventListener("submit", (event) => { event.preventDefault(); loadEntries(event.target.elements.q.value); });
  $("#entry-form").addEventListener("submit", saveEntry);
  $("#entry-new").addEventListener("click", () => editEntry(null));
  $("#import-form").addEventListener("submit", importFile);
  window.cueConsole = { state };  // for the browser tests' introspection
})();
