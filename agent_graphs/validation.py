"""What can be wrong with an agent graph, and the fixes that need no judgement.

Checked: node ids used twice, dangling links (an end without a node id or a port name), links to
nodes that do not exist, the same link twice, and cycles. A cycle is allowed only through a node
whose metadata says `"loop": true` (a node that decides when to go round again); any other cycle
would run for ever. All but cycles are fixed mechanically; a cycle needs a decision (which link
goes), so it is reported and left to the model.
"""

from collections import Counter
from dataclasses import dataclass, field

from models.agent_graph import GraphLink, GraphNode, GraphProblem

LOOP_KEY = "loop"


def _allows_cycles(node: GraphNode) -> bool:
    return node.metadata.get(LOOP_KEY) is True


def _link_problems(nodes: list[GraphNode], links: list[GraphLink]) -> list[tuple[int, GraphProblem]]:
    """Each link that is wrong, by its index: a repeated link from its second copy on."""
    node_ids = {n.id for n in nodes}
    problems: list[tuple[int, GraphProblem]] = []
    seen: set[tuple[str, str, str, str]] = set()
    for index, link in enumerate(links):
        empty = [end for end, value in (("source node id", link.source_id), ("output name", link.source_name),
                                        ("sink node id", link.sink_id), ("input name", link.sink_name))
                 if not value.strip()]
        missing = [i for i in dict.fromkeys((link.source_id, link.sink_id)) if i.strip() and i not in node_ids]
        if empty:
            problems.append((index, GraphProblem(
                code="dangling_link", fixable=True, link=link,
                message=f"Link {link.label()} has no {' and no '.join(empty)}: it joins nothing. Remove it, or give "
                        "it both ends.")))
        elif missing:
            problems.append((index, GraphProblem(
                code="link_to_missing_node", fixable=True, link=link, node_ids=missing,
                message=f"Link {link.label()} refers to {', '.join(repr(i) for i in missing)}, which is no node of "
                        "this graph. Remove the link, or add the node.")))
        elif link.key() in seen:
            problems.append((index, GraphProblem(code="duplicate_link", fixable=True, link=link,
                                                 message=f"Link {link.label()} is there twice; one copy is enough.")))
        seen.add(link.key())
    return problems


def _cycles(nodes: list[GraphNode], links: list[GraphLink]) -> list[list[str]]:
    """The cycles that pass through no loop node: each one as the node ids along it."""
    looping = {n.id for n in nodes if _allows_cycles(n)}
    node_ids = {n.id for n in nodes} - looping
    successors: dict[str, list[str]] = {i: [] for i in node_ids}
    for link in links:
        if link.source_id in node_ids and link.sink_id in node_ids and link.sink_id not in successors[link.source_id]:
            successors[link.source_id].append(link.sink_id)
    cycles, state, path = [], {}, []  # state: 1 on the current path, 2 done

    def visit(node_id: str) -> None:  # iterative depth-first search: graphs may be deep
        stack = [(node_id, iter(successors[node_id]))]
        state[node_id], path[:] = 1, [node_id]
        while stack:
            current, following = stack[-1]
            step = next(following, None)
            if step is None:
                stack.pop()
                path.pop()
                state[current] = 2
            elif state.get(step) == 1:
                cycles.append(path[path.index(step):] + [step])
            elif step not in state:
                state[step] = 1
                path.append(step)
                stack.append((step, iter(successors[step])))

    for node in nodes:
        if node.id in node_ids and node.id not in state:
            visit(node.id)
    return cycles


def graph_problems(nodes: list[GraphNode], links: list[GraphLink]) -> list[GraphProblem]:
    """Everything wrong with the graph, in the order of its nodes and links."""
    problems = [GraphProblem(code="duplicate_node_id", fixable=True, node_ids=[node_id],
                             message=f"Node id {node_id!r} is used by {count} nodes; each node needs its own id.")
                for node_id, count in Counter(n.id for n in nodes).items() if count > 1]
    problems += [problem for _, problem in _link_problems(nodes, links)]
    for cycle in _cycles(nodes, links):
        problems.append(GraphProblem(
            code="cycle", fixable=False, node_ids=cycle[:-1],
            message=f"Nodes {' -> '.join(cycle)} form a cycle, which would run for ever. Remove one of its links, or "
                    f"mark the node that decides when to go round again with metadata {{\"{LOOP_KEY}\": true}}."))
    return problems


@dataclass
class FixedGraph:
    nodes: list[GraphNode]
    links: list[GraphLink]
    fixed: list[str] = field(default_factory=list)  # what was done, one line each
    remaining: list[GraphProblem] = field(default_factory=list)  # what needs a decision


def _unique_id(base: str, taken: set[str]) -> str:
    number = 2
    while f"{base}_{number}" in taken:
        number += 1
    return f"{base}_{number}"


def fix_graph(nodes: list[GraphNode], links: list[GraphLink]) -> FixedGraph:
    """The mechanical fixes: a node id used again is renamed (`<id>_2`, ...; links keep meaning the
    first node of that id); dangling links, links to missing nodes and repeated links are removed."""
    fixed, taken, kept_nodes = [], {n.id for n in nodes}, []
    seen: set[str] = set()
    for node in nodes:
        if node.id in seen:
            renamed = _unique_id(node.id, taken)
            taken.add(renamed)
            fixed.append(f"renamed the second node {node.id!r} ({node.block_id}) to {renamed!r}")
            node = node.model_copy(update={"id": renamed})
        seen.add(node.id)
        kept_nodes.append(node)
    removed = {index for index, _ in _link_problems(kept_nodes, links)}
    kept_links = []
    for index, link in enumerate(links):
        if index in removed:
            fixed.append(f"removed link {link.label()}")
        else:
            kept_links.append(link)
    return FixedGraph(kept_nodes, kept_links, fixed, graph_problems(kept_nodes, kept_links))
