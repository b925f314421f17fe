// What the page shows of a turn, as plain items, from either source: the assistant's UIMessage
// as the AI SDK assembles it from the stream, or the rows PostgreSQL holds (a reload, history).
// Items: { kind: "text" | "reasoning" | "tool" | "note" | "delivered", ... }. No DOM here (tested in node).

// The round-retry contract (README, "The stream"): a `data-round-retry` part means the model round
// in progress was retried after its worker died or its stream broke. What that round's step showed
// so far (the parts after the last `step-start`: partial text, reasoning, tool inputs) is void and
// goes; the retried attempt's parts follow. So a retried round's text is replaced, never shown twice.
export function visibleParts(parts) {
  const out = [];
  for (const part of parts) {
    if (part.type === "data-round-retry") {
      let keep = out.length;
      while (keep > 0 && out[keep - 1].type !== "step-start") keep -= 1;
      out.length = keep;
      continue;
    }
    out.push(part);
  }
  return out;
}

function toolName(part) {
  return part.type === "dynamic-tool" ? part.toolName : part.type.slice("tool-".length);
}

// The sub-session a tool call started or looked at, if any.
export function subSessionOf(name, input, output) {
  if (output && typeof output === "object" && typeof output.sub_autopilot_session_id === "string") {
    return output.sub_autopilot_session_id;
  }
  if (name === "get_sub_session_result" && input && typeof input.sub_session_id === "string") return input.sub_session_id;
  return null;
}

// The items of an assistant UIMessage (`message.parts` as the SDK builds them).
export function itemsFromMessage(message, { delivered = () => [] } = {}) {
  const items = [];
  for (const part of visibleParts(message?.parts ?? [])) {
    if (part.type === "text") {
      if (part.text) items.push({ kind: "text", text: part.text, streaming: part.state === "streaming" });
    } else if (part.type === "reasoning") {
      if (part.text) items.push({ kind: "reasoning", text: part.text, streaming: part.state === "streaming" });
    } else if (part.type.startsWith("tool-") || part.type === "dynamic-tool") {
      const name = toolName(part);
      items.push({
        kind: "tool", id: part.toolCallId, name, state: part.state, input: part.input, output: part.output,
        errorText: part.errorText, subSession: subSessionOf(name, part.input, part.output),
        approvalId: part.state === "approval-requested" ? part.approval?.id : undefined,
      });
    } else if (part.type === "data-pending-delivered") {
      for (const text of delivered(part.data?.messageIds ?? [])) items.push({ kind: "delivered", text });
    }
  }
  return items;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// The history as blocks: { role: "user", text, typed } and { role: "assistant", items }, from the
// session's rows in order (a turn's rows: reasoning, the answer and its tool calls, the tool
// results, a system marker such as "stopped by user").
export function blocksFromRows(rows) {
  const blocks = [];
  let assistant = null;
  const tools = new Map();
  for (const row of rows) {
    if (row.role === "user") {
      assistant = null;
      blocks.push({ role: "user", text: row.content, typed: row.is_user_message !== false });
      continue;
    }
    if (!assistant) {
      assistant = { role: "assistant", items: [] };
      blocks.push(assistant);
    }
    if (row.role === "reasoning") {
      assistant.items.push({ kind: "reasoning", text: row.content });
    } else if (row.role === "assistant") {
      if (row.content) assistant.items.push({ kind: "text", text: row.content });
      for (const call of row.tool_calls ?? []) {
        const item = { kind: "tool", id: call.id, name: call.name, state: "input-available",
                       input: parseJson(call.arguments || "{}") };
        tools.set(call.id, item);
        assistant.items.push(item);
      }
    } else if (row.role === "tool") {
      const item = tools.get(row.tool_call_id);
      const result = parseJson(row.content);
      if (item) {
        if (result && typeof result === "object" && Object.keys(result).length === 1 && "error" in result) {
          item.state = "output-error";
          item.errorText = String(result.error);
        } else {
          item.state = "output-available";
          item.output = result;
        }
        item.subSession = subSessionOf(item.name, item.input, item.output);
      }
    } else if (row.role === "system") {
      assistant.items.push({ kind: "note", text: row.content });
    }
  }
  return blocks;
}

// The text a person reads in a turn's items (what tests compare with PostgreSQL).
export function visibleText(items) {
  return items.filter((item) => item.kind === "text").map((item) => item.text).join("");
}
