// Reads an SSE body on stdin the way the AI SDK's DefaultChatTransport does (strict chunk
// schema), folds it into a UIMessage with readUIMessageStream, and prints that message as JSON.
// The first argument names the AI SDK to use: `ai5`, `ai6` or `ai7` (npm aliases of each major).
const sdk = process.argv[2] || "ai5";
const { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema } = await import(sdk);

const input = new ReadableStream({
  async start(controller) {
    for await (const chunk of process.stdin) controller.enqueue(new Uint8Array(chunk));
    controller.close();
  },
});

const chunks = parseJsonEventStream({ stream: input, schema: uiMessageChunkSchema }).pipeThrough(
  new TransformStream({
    transform(result, controller) {
      if (!result.success) throw result.error;
      controller.enqueue(result.value);
    },
  }),
);

let last;
for await (const message of readUIMessageStream({ stream: chunks, onError: (e) => { throw e; } })) {
  last = message;
}
process.stdout.write(JSON.stringify(last));
