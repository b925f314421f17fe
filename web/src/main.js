// The playground: sign in, sessions, and a chat whose answers stream in through the AI SDK's reader.
import { auth, errorOf, json, request, takeTokenFromUrl } from "./api.js";
import { assistantBlock, h, renderItems, userBubble } from "./render.js";
import { compact, pump, TurnFeed } from "./stream.js";
import { blocksFromRows, itemsFromMessage } from "./view.js";

// The AI SDK major this page bundles: the stream then carries tool approvals as its own parts
// (`tool-approval-request`, `tool-output-denied`), and the SDK's tool state shows them.
const PROTOCOL = { "x-ai-sdk-version": "7" };

const $ = (id) => document.getElementById(id);
const SESSIONS = "/api/chat/sessions";
const SAVED_PREFIX = "copilot-playground:live:";
const RECONNECTS = 5; // a broken connection is resumed at most this often
const MAX_FOLLOWS = 50; // streams read in a row for one send: its turn, resumes, the turns follow-ups open

const state = {
  sessionId: null,
  session: null,
  live: null, // the stream being read for the open session (a Live)
  queued: [], // follow-ups waiting in the running turn: { id, text, bufferLength, maxBufferLength }
  texts: new Map(), // message id -> text, for the follow-ups this page queued
};

// --- status and errors ---------------------------------------------------------------------------

function setStatus(value, detail = "") {
  const status = $("status");
  status.dataset.state = value;
  status.textContent = detail ? `${value} · ${detail}` : value;
  const running = value !== "idle";
  $("stop").disabled = !running || value === "stopping";
}

function showError(message) {
  const node = $("error");
  node.textContent = message || "";
  node.hidden = !message;
}

// --- usage and tier ------------------------------------------------------------------------------

function percent(window) {
  return window ? `${Math.round(window.percent_used)}%` : "no limit";
}

async function refreshUsage() {
  try {
    const [usage, subscription] = await Promise.all([json("GET", "/api/chat/usage"),
                                                    json("GET", "/api/credits/subscription")]);
    const pending = subscription.pending_tier ? ` (→ ${subscription.pending_tier})` : "";
    $("usage").replaceChildren(
      h("span", { class: "tier", "data-testid": "tier", text: `${subscription.tier}${pending}` }),
      h("span", { text: `today ${percent(usage.daily)}`, title: usage.daily ? `resets ${usage.daily.resets_at}` : "" }),
      h("span", { text: `this week ${percent(usage.weekly)}`,
                  title: usage.weekly ? `resets ${usage.weekly.resets_at}` : "" }),
      h("span", { text: `this month ${usage.monthly_spend.credits_spent} credits` }));
  } catch {
    // usage is a nicety: the chat goes on without it
  }
}

// --- sessions ------------------------------------------------------------------------------------

async function refreshSessions() {
  const page = await json("GET", `${SESSIONS}?limit=50`);
  $("sessions").replaceChildren(...page.sessions.map((session) => h("li", {},
    h("a", { href: `#session=${session.id}`, "data-session": session.id,
             class: session.id === state.sessionId ? "current" : null,
             text: session.title || "New session" }))));
}

async function createSession() {
  const session = await json("POST", SESSIONS, { body: {} });
  location.hash = `session=${session.id}`;
}

function sessionFromHash() {
  return new URLSearchParams(location.hash.slice(1)).get("session");
}

// --- the history and the live turns --------------------------------------------------------------

function liveTurnIds() {
  return state.live ? state.live.turnIds() : new Set();
}

function renderHistory(rows) {
  const live = liveTurnIds();
  const shown = rows.filter((row) => !live.has(row.turn_id));
  $("history").replaceChildren(...blocksFromRows(shown).map((block) => (block.role === "user"
    ? userBubble(block.text, { typed: block.typed }) : assistantBlock(block.items))));
}

function renderQueued() {
  $("queued").replaceChildren(...state.queued.map((item) => h("div", { class: "queued-item", "data-testid": "queued" },
    h("span", { class: "queued-text", text: item.text }),
    h("span", { class: "queued-count", text: `queued ${item.bufferLength}/${item.maxBufferLength}` }))));
}

// The texts of follow-ups a `data-pending-delivered` part names (those this page queued).
function delivered(ids) {
  return ids.filter((id) => state.texts.has(id)).map((id) => state.texts.get(id));
}

function markDelivered(ids) {
  const before = state.queued.length;
  state.queued = state.queued.filter((item) => !ids.includes(item.id));
  if (state.queued.length !== before) renderQueued();
}

async function openSession(sessionId) {
  if (state.live) state.live.close();
  state.live = null;
  state.queued = [];
  state.sessionId = sessionId;
  renderQueued();
  showError("");
  $("history").replaceChildren();
  $("live").replaceChildren();
  setStatus("idle");
  if (!sessionId) {
    $("session-title").textContent = "Choose or start a session";
    $("composer").hidden = true;
    return;
  }
  $("composer").hidden = false;
  let detail;
  try {
    detail = await json("GET", `${SESSIONS}/${sessionId}`);
  } catch (error) {
    showError(error.message);
    return;
  }
  if (state.sessionId !== sessionId) return;
  state.session = detail;
  $("session-title").textContent = detail.title || "New session";
  $("parent-link").replaceChildren(...(detail.parent_session_id
    ? [h("a", { href: `#session=${detail.parent_session_id}`, text: "↑ the session that started this one" })] : []));
  document.querySelectorAll("#sessions a").forEach((a) => a.classList.toggle("current", a.dataset.session === sessionId));
  if (detail.active_turn) {
    // Re-attach: the running turn's stream, resumed after the last event this tab showed before
    // a reload (its chunks were kept), or read from the turn's start.
    const live = new Live(sessionId);
    state.live = live;
    const turnRows = detail.messages.filter((row) => row.turn_id === detail.active_turn.turn_id);
    live.openingTexts = turnRows.filter((row) => row.role === "user").map((row) => row.content);
    renderHistory(detail.messages);
    live.reattach(detail.active_turn.turn_id);
  } else {
    renderHistory(detail.messages);
  }
}

// The session as PostgreSQL holds it, once turns have ended: their rows replace their live blocks.
async function reloadHistory(ended = null) {
  const sessionId = state.sessionId;
  try {
    const detail = await json("GET", `${SESSIONS}/${sessionId}`);
    if (state.sessionId !== sessionId) return;
    renderHistory(detail.messages);
    ended?.dropEndedTurns();
    state.live?.dropEndedTurns();
    $("session-title").textContent = detail.title || "New session";
  } catch (error) {
    showError(error.message);
  }
  refreshSessions().catch(() => {});
  refreshUsage();
}

// One session's stream(s): the POST that started a turn, then GETs that resume it (a broken
// connection, a reload) or follow into the turn that queued follow-ups open.
class Live {
  constructor(sessionId) {
    this.sessionId = sessionId;
    this.abort = new AbortController();
    this.lastEventId = null;
    this.turns = [];
    this.openingTexts = [];
    this.closed = false;
    this.saveTimer = null;
    this.feed = new TurnFeed({ onTurn: (turn) => this.#showTurn(turn) });
  }

  // The turns still running here: their rows are shown by the live blocks, not the history.
  turnIds() {
    return new Set(this.turns.filter((entry) => !entry.turn.ended).map((entry) => entry.turn.id));
  }

  close() {
    this.closed = true;
    this.abort.abort();
  }

  #showTurn(turn) {
    // The messages that open this turn: what the page sent, or the follow-ups queued before it.
    const opening = this.openingTexts.length ? this.openingTexts : state.queued.map((item) => item.text);
    if (!this.openingTexts.length) {
      state.queued = [];
      renderQueued();
    }
    this.openingTexts = [];
    const group = h("div", { class: "live-turn" }, ...opening.map((text) => userBubble(text)));
    const block = h("div", { class: "bubble assistant", "data-testid": "live-answer" });
    const notes = h("div", { class: "turn-notes" });
    block.append(h("div", { class: "items" }), notes);
    group.append(block);
    $("live").append(group);
    const entry = { turn, group, removed: false };
    this.turns.push(entry);
    let scheduled = false;
    turn.onMessage = () => {
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(() => {
        scheduled = false;
        renderItems(block.querySelector(".items"), itemsFromMessage(turn.message, { delivered }));
        notes.replaceChildren(...turn.errors.map((text) => h("div", { class: "note", "data-tone": "error", text })),
          ...(turn.aborted ? [h("div", { class: "note", text: "Stopped." })] : []));
        block.scrollIntoView({ block: "end" });
      });
    };
  }

  dropEndedTurns() {
    for (const entry of this.turns) {
      if (entry.turn.ended && !entry.removed) {
        entry.group.remove();
        entry.removed = true;
      }
    }
  }

  #onChunk(chunk, id) {
    if (id) this.lastEventId = id;
    if (chunk.type === "data-pending-delivered") markDelivered(chunk.data?.messageIds ?? []);
    this.feed.push(chunk);
    this.#save();
  }

  // The running turn's chunks and last event id, for a reload (sessionStorage: this tab only).
  #save() {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => this.saveNow(), 250);
  }

  saveNow() {
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
    const turn = this.feed.current;
    if (!turn || !turn.id || !this.lastEventId) {
      sessionStorage.removeItem(SAVED_PREFIX + this.sessionId);
      return;
    }
    try {
      sessionStorage.setItem(SAVED_PREFIX + this.sessionId, JSON.stringify({
        turnId: turn.id, lastEventId: this.lastEventId, chunks: compact(turn.chunks) }));
    } catch {
      // storage full: a reload then reads the turn from its start
    }
  }

  async read(response, { followQueued }) {
    let reconnects = 0;
    for (let follows = 0; follows < MAX_FOLLOWS; follows += 1) {
      let done = false;
      try {
        setStatus("streaming");
        ({ done } = await pump(response.body, { onChunk: (chunk, id) => this.#onChunk(chunk, id) }));
      } catch (error) {
        if (this.closed) return;
        showError(`The stream could not be read: ${error.message}`);
        this.abort.abort();
        break;
      }
      if (this.closed) return;
      const more = done ? followQueued && state.queued.length > 0 : reconnects < RECONNECTS;
      if (!more) break;
      if (!done) {
        setStatus("reconnecting");
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** reconnects));
        reconnects += 1;
        if (this.closed) return;
      }
      // Resume after the last event shown: the rest of this turn, and on into the next one.
      response = await this.#follow(this.lastEventId);
      if (!response) break;
      followQueued = true;
    }
    this.feed.end();
    sessionStorage.removeItem(SAVED_PREFIX + this.sessionId);
    if (state.live === this) {
      state.live = null;
      setStatus("idle");
    }
    await Promise.all(this.turns.map((entry) => entry.turn.done));
    await reloadHistory(this);
  }

  async #follow(lastEventId) {
    const headers = { ...PROTOCOL, ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) };
    try {
      const response = await request("GET", `${SESSIONS}/${this.sessionId}/stream`, { headers,
                                                                                      signal: this.abort.signal });
      if (response.ok) return response;
      if (response.status !== 404) showError((await errorOf(response)).message);
    } catch (error) {
      if (!this.closed) showError(`Could not re-attach to the turn: ${error.message}`);
    }
    return null;
  }

  async reattach(turnId) {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(SAVED_PREFIX + this.sessionId) || "null");
    } catch {
      saved = null;
    }
    let after = null;
    if (saved && saved.turnId === turnId) {
      for (const chunk of saved.chunks) this.feed.push(chunk);
      after = saved.lastEventId;
      this.lastEventId = after;
    }
    const response = await this.#follow(after);
    if (!response) {
      this.feed.end();
      if (state.live === this) state.live = null;
      setStatus("idle");
      await reloadHistory(this);
      return;
    }
    await this.read(response, { followQueued: true });
  }
}

async function send(text) {
  const sessionId = state.sessionId;
  showError("");
  let response;
  const live = new Live(sessionId);
  try {
    response = await request("POST", `${SESSIONS}/${sessionId}/stream`, { body: { message: text }, headers: PROTOCOL,
                                                                          signal: live.abort.signal });
  } catch (error) {
    showError(`The message was not sent: ${error.message}`);
    return;
  }
  if (state.sessionId !== sessionId) {
    live.close();
    return;
  }
  if (response.status === 202) {
    // A turn is running: the message waits in its buffer, delivered at its next round or opening the next turn.
    const queued = await response.json();
    state.texts.set(queued.message_id, text);
    state.queued.push({ id: queued.message_id, text, bufferLength: queued.buffer_length,
                        maxBufferLength: queued.max_buffer_length });
    renderQueued();
    return;
  }
  if (!response.ok) {
    showError((await errorOf(response)).message);
    return;
  }
  // A stream still finishing (its turn ended as this one began) ends by itself.
  state.live = live;
  live.openingTexts = [text];
  await live.read(response, { followQueued: true });
}

async function stop() {
  if (!state.sessionId) return;
  setStatus("stopping");
  try {
    await json("POST", `${SESSIONS}/${state.sessionId}/stop`);
  } catch (error) {
    showError(error.message);
  }
}

// --- sign in -------------------------------------------------------------------------------------

async function signedIn() {
  try {
    await json("GET", `${SESSIONS}?limit=1`);
    return true;
  } catch {
    return false;
  }
}

async function start() {
  takeTokenFromUrl();
  const ok = Boolean(auth.token) && (await signedIn());
  $("sign-in").hidden = ok;
  $("app").hidden = !ok;
  $("sign-out").hidden = !ok;
  if (!ok) {
    if (auth.token) $("sign-in-error").textContent = "That token was refused; paste another.";
    auth.token = null;
    return;
  }
  await Promise.all([refreshSessions(), refreshUsage()]);
  await openSession(sessionFromHash());
}

function wire() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    auth.token = $("token").value.trim();
    start();
  });
  $("sign-out").addEventListener("click", () => {
    auth.token = null;
    location.hash = "";
    location.reload();
  });
  $("new-session").addEventListener("click", () => createSession().catch((error) => showError(error.message)));
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("input");
    const text = input.value.trim();
    if (!text || !state.sessionId) return;
    input.value = "";
    send(text);
  });
  $("input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", stop);
  window.addEventListener("hashchange", () => {
    const sessionId = sessionFromHash();
    if (sessionId !== state.sessionId) openSession(sessionId);
  });
  window.addEventListener("pagehide", () => state.live?.saveNow());
}

wire();
start();


// Approve / Deny on a tool call waiting for approval (render.js raises the event).
document.addEventListener("tool-approval", async (event) => {
  const { approvalId, approved } = event.detail;
  try {
    await json("POST", `${SESSIONS}/${state.sessionId}/tool-approvals/${encodeURIComponent(approvalId)}`,
               { body: { approved } });
  } catch (error) {
    showError(`The decision was not taken: ${error.message}`);
  }
});
