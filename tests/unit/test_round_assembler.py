"""The UI-stream ordering rules and tool-call assembly, without any server."""

from conversation.history import MISSING_RESULT, model_history
from models.turn import ToolCall
from stream_relay.round_assembler import RoundAssembler, reasoning_text


def types(parts):
    return [p["type"] for p in parts]


def test_reasoning_closes_before_text_and_text_before_tool_input():
    a = RoundAssembler("r0a1")
    out = a.on_reasoning("hm") + a.on_text("Hi") + a.on_tool_call(0, "c1", "get_current_time", '{"tz')
    out += a.on_tool_call(0, None, None, '": 1}') + a.finish()
    assert types(out) == ["reasoning-start", "reasoning-delta", "reasoning-end", "text-start", "text-delta",
                          "text-end", "tool-input-start", "tool-input-delta", "tool-input-delta",
                          "tool-input-available"]
    assert out[-1]["input"] == {"tz": 1}
    assert a.tool_calls() == [ToolCall(id="c1", name="get_current_time", arguments='{"tz": 1}')]


def test_parallel_tool_calls_are_assembled_by_index():
    a = RoundAssembler("r0a1")
    a.on_tool_call(0, "a", "one", '{"x"')
    a.on_tool_call(1, "b", "two", "{}")
    a.on_tool_call(0, None, None, ": 1}")
    assert [(c.id, c.name, c.arguments) for c in a.tool_calls()] == [("a", "one", '{"x": 1}'), ("b", "two", "{}")]


def test_a_part_still_open_at_the_end_is_closed():
    a = RoundAssembler("r0a1")
    a.on_reasoning("thinking only")
    assert types(a.finish()) == ["reasoning-end"]
    assert a.finish() == []


def test_reasoning_shapes_in_priority_order():
    assert reasoning_text({"reasoning": "a", "reasoning_content": "b"}) == "a"
    assert reasoning_text({"reasoning_content": "b"}) == "b"
    details = [{"type": "reasoning.text", "text": "t"}, {"type": "reasoning.summary", "summary": "s"},
               {"type": "reasoning.encrypted", "data": "xx"}, {"type": "text", "text": "!"}]
    assert reasoning_text({"reasoning_details": details}) == "ts!"
    assert reasoning_text({}) == ""


class Row:
    def __init__(self, role, content="", tool_calls=None, tool_call_id=None, context=None):
        self.role, self.content, self.tool_calls, self.tool_call_id = role, content, tool_calls, tool_call_id
        self.context = context


def test_history_is_well_formed_and_hides_reasoning_and_markers():
    rows = [Row("user", "hi"), Row("reasoning", "secret thoughts"),
            Row("assistant", "", tool_calls=[{"id": "c1", "name": "t", "arguments": "{}"}]),
            Row("system", "stopped by user"), Row("user", "again"), Row("tool", "orphan", tool_call_id="zz"),
            Row("assistant", "ok")]
    history = model_history(rows)
    assert [m.role for m in history] == ["system", "user", "assistant", "tool", "user", "assistant"]
    assert history[3].tool_call_id == "c1" and history[3].content == MISSING_RESULT
    assert all("secret" not in m.content and "stopped by user" not in m.content for m in history)


def test_a_cost_that_cannot_be_one_is_not_counted():
    from stream_relay.round_assembler import cost_microdollars

    assert cost_microdollars(0.000123) == 123 and cost_microdollars(0) == 0
    for impossible in (-0.5, float("inf"), float("nan"), 10_000.0, "0.1", True, None):
        assert cost_microdollars(impossible) is None


def test_a_user_message_reaches_the_model_with_its_page_and_files():
    context = {"page": {"url": "https://example.test/flow", "content": "Flow editor"},
               "files": [{"file_id": "f1", "name": "notes.md", "content_type": "text/markdown", "size_bytes": 5,
                          "text": "hello"},
                         {"file_id": "f2", "name": "photo.png", "content_type": "image/png", "size_bytes": 9}]}
    [_, user] = model_history([Row("user", "What is this?", context=context)])
    assert user.content == ("What is this?\n\n[Page the user is on: https://example.test/flow]\nFlow editor\n\n"
                            "[Attached file: notes.md (text/markdown, 5 bytes), workspace://f1]\nhello\n\n"
                            "[Attached file: photo.png (image/png, 9 bytes), workspace://f2]")
