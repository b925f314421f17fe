// Reading a turn's stream with the Vercel AI SDK's own client code: `parseJsonEventStream` with the
// strict `uiMessageChunkSchema` (what useChat's DefaultChatTransport does), and `readUIMessageStream`
// to fold the chunks into a UIMessage. Beside the SDK's parser, a small scanner of the same bytes
// keeps the last event id (to resume with `Last-Event-ID`) and sees the `[DONE]` that ends a stream.
import { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema } from "ai";

// Reads one HTTP response body: each chunk, with its event's id, to `onChunk(chunk, id)`, in order.
// Resolves to `{ done }`: true when the stream ended with `[DONE]`, false when it broke off.
export async function pump(body, { onChunk }) {
  const [forSdk, forIds] = body.tee();
  // Each data event is one chunk for the SDK and one id for the scanner: paired in order, so an id
  // is handed on only with its chunk (what a reload resumes after was really shown).
  const ids = [];
  const chunks = [];
  let paired = 0;
  const pair = () => {
    while (paired < ids.length && paired < chunks.length) {
      onChunk(chunks[paired], ids[paired]);
      paired += 1;
    }
  };
  const scanned = scanEvents(forIds, (id) => { ids.push(id); pair(); });
  const reader = parseJsonEventStream({ stream: forSdk, schema: uiMessageChunkSchema }).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!value.success) throw value.error;
      chunks.push(value.value);
      pair();
    }
  } catch (error) {
    // The connection broke (both readers see it), or the SDK refused a chunk (then the caller
    // aborts the request, and this is not a reason to resume).
    const result = await Promise.race([scanned, new Promise((resolve) => setTimeout(() => resolve(null), 100))]);
    if (result?.broken) return { done: false };
    throw error;
  }
  const result = await scanned;
  pair();
  return { done: result.done };
}

// The SSE framing, for ids only: `onEvent(id or null)` for every data event but `[DONE]` when it is
// complete (its blank line), as the SDK's parser dispatches it.
async function scanEvents(stream, onEvent) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let id = null;
  let data = null;
  let done = false;
  try {
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += value;
      let newline;
      while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (data === "[DONE]") done = true;
          else if (data !== null) onEvent(id);
          id = null;
          data = null;
        } else if (line.startsWith("id:")) {
          id = line.slice(3).trimStart();
        } else if (line.startsWith("data:")) {
          data = (data === null ? "" : data + "\n") + line.slice(5).replace(/^ /, "");
        }
      }
    }
  } catch {
    return { done, broken: true };
  }
  return { done, broken: false };
}

// The turns of one stream: a `start` chunk begins a turn (a stream followed with GET goes on into
// auto-continued turns), `finish` ends it. Each turn's chunks go through `readUIMessageStream`,
// which hands every new state of the assistant's message to `turn.onMessage`.
export class TurnFeed {
  constructor({ onTurn }) {
    this.onTurn = onTurn;
    this.current = null;
  }

  push(chunk) {
    if (this.current && chunk.type === "start" && this.current.started) this.end();
    if (!this.current) this.current = this.#open(chunk);
    const turn = this.current;
    if (chunk.type === "start") {
      turn.started = true;
      turn.id = chunk.messageId || turn.id;
    }
    if (chunk.type === "abort") turn.aborted = true;
    turn.chunks.push(chunk);
    turn.controller.enqueue(chunk);
    turn.onChunk?.(chunk);
    if (chunk.type === "finish") this.end();
  }

  end() {
    const turn = this.current;
    if (!turn) return;
    this.current = null;
    turn.ended = true;
    try {
      turn.controller.close();
    } catch {
      // already closed
    }
  }

  #open(first) {
    const turn = { id: first.type === "start" ? first.messageId : null, started: false, ended: false, aborted: false,
                   chunks: [], errors: [], message: null, controller: null, onMessage: null, onChunk: null };
    const stream = new ReadableStream({ start: (controller) => { turn.controller = controller; } });
    this.onTurn(turn);
    turn.done = (async () => {
      try {
        for await (const message of readUIMessageStream({
          stream, onError: (error) => { turn.errors.push(String(error?.message ?? error)); turn.onMessage?.(turn.message); },
        })) {
          turn.message = message;
          turn.onMessage?.(message);
        }
      } catch (error) {
        turn.errors.push(String(error?.message ?? error));
        turn.onMessage?.(turn.message);
      }
    })();
    return turn;
  }
}

// Chunks kept to re-read a turn after a reload: consecutive deltas of one part merged into one.
export function compact(chunks) {
  const out = [];
  for (const chunk of chunks) {
    const last = out[out.length - 1];
    if (last && last.type === chunk.type) {
      if ((chunk.type === "text-delta" || chunk.type === "reasoning-delta") && last.id === chunk.id) {
        out[out.length - 1] = { ...last, delta: last.delta + chunk.delta };
        continue;
      }
      if (chunk.type === "tool-input-delta" && last.toolCallId === chunk.toolCallId) {
        out[out.length - 1] = { ...last, inputTextDelta: last.inputTextDelta + chunk.inputTextDelta };
        continue;
      }
    }
    out.push(chunk);
  }
  return out;
}
