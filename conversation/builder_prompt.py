"""What the model of a builder-bound session reads besides the conversation (seed notes §9.4-9.5).

- The **system-prompt suffix** `<builder_session>`: the run-dispatch guidance and the whole
  building guide. It names no graph and no user, so it is byte-identical for every builder
  session and the provider's prompt cache keeps it.
- The **per-turn prefix** `<builder_context>` on the latest user message: a compact snapshot of
  the bound graph (id, name, version, counts, at most 100 nodes and 200 links), fetched with the
  session owner's id, so a graph that is not theirs is never shown. It is given to the model only,
  never stored.
"""

import logging
from typing import Any, Optional

from agent_graphs.guide import load_guide
from agent_graphs.store import GraphStore
from models.agent_graph import AgentGraph, GraphNode

log = logging.getLogger(__name__)

BUILDER_CONTEXT_TAG = "builder_context"
BUILDER_SESSION_TAG = "builder_session"
MAX_NODES = 100
MAX_LINKS = 200
FETCH_FAILED_PREFIX = f"<{BUILDER_CONTEXT_TAG}>\n<status>fetch_failed</status>\n</{BUILDER_CONTEXT_TAG}>\n\n"
BUILDER_RUN_AGENT_GUIDANCE = (
    "You are operating inside the builder panel, not the standalone copilot page. The builder page already "
    "subscribes to agent executions the moment you return an execution_id, so for REAL (non-dry) runs prefer "
    "`run_agent(dry_run=False, wait_for_result=0)` — the user will see the run stream in the builder's execution "
    "panel in-place and your turn ends immediately with the id. For DRY-RUNS keep `dry_run=True, "
    "wait_for_result=120`: blocking is required so you can inspect `execution.node_executions` and report the "
    "verdict in the same turn."
)
_DISPLAY_KEYS = ("name", "title", "label")
_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}


def xml_escaped(value: Any) -> str:
    """Text safe inside the snapshot's tags and attributes: a name cannot close or open a tag."""
    if value is None:
        return ""
    return "".join(_XML_ESCAPES.get(ch, ch) for ch in str(value))


def builder_system_prompt_suffix(builder_graph_id: Optional[str]) -> str:
    """The suffix of a builder-bound session's system prompt; "" for any other session, and "" when
    the guide cannot be read (the session then works without it)."""
    if not builder_graph_id:
        return ""
    try:
        guide = load_guide()
    except OSError:
        log.exception("the agent-building guide could not be read; builder sessions go without it")
        return ""
    return (f"\n\n<{BUILDER_SESSION_TAG}>\n<run_agent_dispatch_mode>\n{BUILDER_RUN_AGENT_GUIDANCE}\n"
            f"</run_agent_dispatch_mode>\n<building_guide>\n{guide}\n</building_guide>\n</{BUILDER_SESSION_TAG}>")


def display_name(node: GraphNode) -> str:
    """The first of name, title, label (in the node's input defaults, then its metadata) that is
    non-blank text; else its block id; else "unknown"."""
    for key in _DISPLAY_KEYS:
        value = node.input_default.get(key) or node.metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return node.block_id or "unknown"


def render_builder_context(graph: AgentGraph) -> str:
    names = {node.id: display_name(node) for node in graph.nodes}
    name = f' name="{xml_escaped(graph.name.strip())}"' if graph.name.strip() else ""
    lines = [f"<{BUILDER_CONTEXT_TAG}>",
             f'<graph id="{xml_escaped(graph.id)}"{name} version="{xml_escaped(graph.version or "")}" '
             f'node_count="{len(graph.nodes)}" edge_count="{len(graph.links)}"/>', "<nodes>"]
    lines += [f"- {xml_escaped(n.id)}: {xml_escaped(names[n.id])} ({xml_escaped(n.block_id)})"
              for n in graph.nodes[:MAX_NODES]]
    if len(graph.nodes) > MAX_NODES:
        lines.append(f"({len(graph.nodes) - MAX_NODES} more not shown)")
    lines += ["</nodes>", "<links>"]
    lines += [f"- {xml_escaped(names.get(link.source_id, link.source_id))}.{xml_escaped(link.source_name)} -> "
              f"{xml_escaped(names.get(link.sink_id, link.sink_id))}.{xml_escaped(link.sink_name)}"
              for link in graph.links[:MAX_LINKS]]
    if len(graph.links) > MAX_LINKS:
        lines.append(f"({len(graph.links) - MAX_LINKS} more not shown)")
    lines += ["</links>", f"</{BUILDER_CONTEXT_TAG}>"]
    return "\n".join(lines) + "\n\n"


async def builder_context_prefix(graphs: Optional[GraphStore], builder_graph_id: Optional[str], user_id: str) -> str:
    """The snapshot that leads the latest user message of a builder-bound session's turn; "" for any
    other session, and the `fetch_failed` marker when the graph cannot be read (missing, not the
    owner's, the store down)."""
    if not builder_graph_id:
        return ""
    try:
        graph = await graphs.get(user_id, builder_graph_id) if graphs is not None else None
    except Exception:
        log.exception("the builder graph %s could not be read", builder_graph_id)
        graph = None
    return render_builder_context(graph) if graph else FETCH_FAILED_PREFIX
