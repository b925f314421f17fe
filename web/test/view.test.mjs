// The page's view rules, without a browser: `node web/test/view.test.mjs` (tests/unit/test_web_bundle.py runs it).
import assert from "node:assert/strict";
import { blocksFromRows, itemsFromMessage, visibleParts, visibleText } from "../src/view.js";
import { compact } from "../src/stream.js";

const step = { type: "step-start" };
const text = (t, state = "done") => ({ type: "text", text: t, state });

// The round-retry contract: the retried round's earlier text is replaced, not shown twice.
{
  const parts = [step, text("One moment."), { type: "tool-get_current_time", toolCallId: "c1", state: "output-available",
                                             input: {}, output: { now: "noon" } },
                 step, text("Half an ans"), { type: "data-round-retry", data: { round: 1, attempt: 2 } },
                 text("The whole answer.")];
  assert.deepEqual(visibleParts(parts).map((p) => p.type), ["step-start", "text", "tool-get_current_time",
                                                            "step-start", "text"]);
  assert.equal(visibleText(itemsFromMessage({ parts })), "One moment.The whole answer.");
}

// A retry whose dead attempt showed nothing drops nothing (its step starts before the retry part).
{
  const parts = [step, text("Done."), step, { type: "data-round-retry", data: { round: 1, attempt: 2 } }, text("Next.")];
  assert.equal(visibleText(itemsFromMessage({ parts })), "Done.Next.");
}

// Follow-ups delivered mid-turn are shown where they joined; a sub-session's link is found.
{
  const parts = [step, { type: "tool-run_sub_session", toolCallId: "c2", state: "output-available", input: { task: "x" },
                         output: { status: "completed", sub_autopilot_session_id: "sub-1" } },
                 { type: "data-pending-delivered", data: { messageIds: ["m1"] } }, step, text("Both done.")];
  const items = itemsFromMessage({ parts }, { delivered: (ids) => ids.map((id) => `text of ${id}`) });
  assert.deepEqual(items.map((i) => i.kind), ["tool", "delivered", "text"]);
  assert.equal(items[0].subSession, "sub-1");
  assert.equal(items[1].text, "text of m1");
}

// The history from rows: reasoning, tool calls with their results or errors, the stop marker.
{
  const rows = [
    { role: "user", content: "Hi", turn_id: "t1" },
    { role: "reasoning", content: "Thinking.", turn_id: "t1" },
    { role: "assistant", content: "Let me look.", turn_id: "t1",
      tool_calls: [{ id: "c1", name: "get_current_time", arguments: "{\"timezone\": \"UTC\"}" },
                   { id: "c2", name: "get_sub_session_result", arguments: "{\"sub_session_id\": \"sub-9\"}" }] },
    { role: "tool", content: "{\"now\": \"noon\"}", tool_call_id: "c1", turn_id: "t1" },
    { role: "tool", content: "{\"error\": \"stopped by user\"}", tool_call_id: "c2", turn_id: "t1" },
    { role: "system", content: "stopped by user", turn_id: "t1" },
    { role: "user", content: "Again", turn_id: "t2", is_user_message: false },
  ];
  const blocks = blocksFromRows(rows);
  assert.deepEqual(blocks.map((b) => b.role), ["user", "assistant", "user"]);
  const [reasoning, said, clock, sub, note] = blocks[1].items;
  assert.equal(reasoning.kind, "reasoning");
  assert.equal(said.text, "Let me look.");
  assert.deepEqual([clock.state, clock.output, clock.input], ["output-available", { now: "noon" }, { timezone: "UTC" }]);
  assert.deepEqual([sub.state, sub.errorText, sub.subSession], ["output-error", "stopped by user", "sub-9"]);
  assert.equal(note.kind, "note");
  assert.equal(blocks[2].typed, false);
}

// What a reload keeps: consecutive deltas of a part merged, nothing else changed.
{
  const chunks = [{ type: "start", messageId: "t" }, { type: "text-start", id: "a" },
                  { type: "text-delta", id: "a", delta: "Hel" }, { type: "text-delta", id: "a", delta: "lo" },
                  { type: "tool-input-delta", toolCallId: "c", inputTextDelta: "{\"a\"" },
                  { type: "tool-input-delta", toolCallId: "c", inputTextDelta: ": 1}" }, { type: "text-end", id: "a" }];
  assert.deepEqual(compact(chunks), [chunks[0], chunks[1], { type: "text-delta", id: "a", delta: "Hello" },
                                     { type: "tool-input-delta", toolCallId: "c", inputTextDelta: "{\"a\": 1}" },
                                     chunks[6]]);
}

console.log("view rules: ok");

// A call waiting for approval carries its approval id (the page's Approve / Deny), only while it waits.
{
  const waiting = { role: "assistant", parts: [{ type: "tool-bash_exec", toolCallId: "c1", state: "approval-requested",
                                                 input: { command: "ls" }, approval: { id: "approval_c1" } }] };
  assert.equal(itemsFromMessage(waiting)[0].approvalId, "approval_c1");
  const denied = { role: "assistant", parts: [{ ...waiting.parts[0], state: "output-denied" }] };
  assert.equal(itemsFromMessage(denied)[0].approvalId, undefined);
}
