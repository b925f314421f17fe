// Items (view.js) into the DOM. Text is always set as text, never as HTML. A live turn is
// re-rendered in place, item by item, so a folded part the person opened stays open.

export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function pretty(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

const TOOL_STATES = {
  "input-streaming": "writing its input…",
  "input-available": "running…",
  "output-available": "done",
  "output-error": "failed",
  "approval-requested": "waiting for your approval",
  "approval-responded": "approved, running…",
  "output-denied": "declined",
};

// A call waiting for approval gets Approve and Deny; the page's main module takes the event.
function approvalButtons(approvalId) {
  const decide = (approved) => (event) => {
    event.target.closest(".approval").querySelectorAll("button").forEach((b) => { b.disabled = true; });
    event.target.dispatchEvent(new CustomEvent("tool-approval", { bubbles: true, detail: { approvalId, approved } }));
  };
  return h("div", { class: "approval", "data-approval": approvalId },
    h("button", { class: "approve", text: "Approve", onclick: decide(true) }),
    h("button", { class: "deny", text: "Deny", onclick: decide(false) }));
}

function createItem(item) {
  switch (item.kind) {
    case "text":
      return h("div", { class: "text", "data-kind": "text" });
    case "reasoning":
      return h("details", { class: "reasoning", "data-kind": "reasoning" }, h("summary"), h("div", { class: "body" }));
    case "tool": {
      const details = h("details", { class: "tool" }, h("summary"),
        h("div", { class: "label", text: "Input" }), h("pre", { class: "input" }),
        h("div", { class: "label result-label", text: "Result" }), h("pre", { class: "output" }));
      return h("div", { class: "tool-call", "data-kind": "tool" }, details);
    }
    case "delivered":
      return h("div", { class: "bubble user delivered", "data-kind": "delivered" });
    default:
      return h("div", { class: "note", "data-kind": item.kind });
  }
}

function updateItem(node, item) {
  switch (item.kind) {
    case "text":
      if (node.textContent !== item.text) node.textContent = item.text;
      node.classList.toggle("streaming", Boolean(item.streaming));
      break;
    case "reasoning":
      node.querySelector("summary").textContent = item.streaming ? "Reasoning…" : "Reasoning";
      if (node.querySelector(".body").textContent !== item.text) node.querySelector(".body").textContent = item.text;
      break;
    case "tool": {
      const details = node.querySelector("details");
      details.dataset.state = item.state ?? "";
      details.querySelector("summary").textContent = `${item.name} — ${TOOL_STATES[item.state] ?? item.state ?? ""}`;
      details.querySelector(".input").textContent = pretty(item.input);
      const result = item.state === "output-error" ? item.errorText : pretty(item.output);
      details.querySelector(".output").textContent = result ?? "";
      details.querySelector(".result-label").hidden = result === undefined || result === "";
      details.querySelector(".output").hidden = result === undefined || result === "";
      const waiting = node.querySelector(".approval");
      if (item.approvalId && !waiting) node.append(approvalButtons(item.approvalId));
      if (!item.approvalId && waiting) waiting.remove();
      let link = node.querySelector("a.sub-session");
      if (item.subSession && !link) {
        link = h("a", { class: "sub-session" });
        node.append(link);
      }
      if (link) {
        link.href = `#session=${encodeURIComponent(item.subSession ?? "")}`;
        link.textContent = `Open the sub-session ${item.subSession?.slice(0, 8) ?? ""}…`;
        link.hidden = !item.subSession;
      }
      break;
    }
    default:
      if (node.textContent !== item.text) node.textContent = item.text;
      if (item.tone) node.dataset.tone = item.tone;
  }
}

// Makes `container`'s children show `items`, reusing the nodes of items of the same kind.
export function renderItems(container, items) {
  const nodes = Array.from(container.children);
  items.forEach((item, index) => {
    let node = nodes[index];
    if (!node || node.dataset.kind !== item.kind) {
      const fresh = createItem(item);
      if (node) node.replaceWith(fresh);
      else container.append(fresh);
      node = fresh;
      nodes[index] = fresh;
    }
    updateItem(node, item);
  });
  for (const extra of nodes.slice(items.length)) extra.remove();
}

export function userBubble(text, { typed = true, queued = false } = {}) {
  return h("div", { class: `bubble user${typed ? "" : " on-behalf"}${queued ? " queued" : ""}`, text });
}

export function assistantBlock(items) {
  const block = h("div", { class: "bubble assistant" });
  renderItems(block, items);
  return block;
}
