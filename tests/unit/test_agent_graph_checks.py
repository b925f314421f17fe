"""What validation finds in a graph, what the mechanical fixes do, and how an edit applies."""

import pytest

from agent_graphs.edits import EditRefused, apply_edit
from agent_graphs.validation import fix_graph, graph_problems
from models.agent_graph import GraphContent, GraphEdit, GraphLink, GraphNode


def n(node_id: str, block: str = "b", **metadata) -> GraphNode:
    return GraphNode(id=node_id, block_id=block, metadata=metadata)


def ln(source: str, sink: str, out: str = "o", into: str = "i") -> GraphLink:
    return GraphLink(source_id=source, source_name=out, sink_id=sink, sink_name=into)


def codes(nodes, links) -> list[str]:
    return [p.code for p in graph_problems(nodes, links)]


def test_a_sound_graph_has_no_problems():
    assert graph_problems([n("a"), n("b"), n("c")], [ln("a", "b"), ln("b", "c"), ln("a", "c")]) == []


def test_each_kind_of_problem_is_named_with_what_to_do():
    problems = graph_problems([n("a"), n("a"), n("b")],
                              [ln("a", "b"), ln("a", "b"), ln("", "b"), ln("a", "b", out=" "), ln("a", "ghost")])
    assert [p.code for p in problems] == ["duplicate_node_id", "duplicate_link", "dangling_link", "dangling_link",
                                          "link_to_missing_node"]
    assert all(p.fixable for p in problems)
    assert problems[2].message == ("Link .o -> b.i has no source node id: it joins nothing. Remove it, or give it "
                                   "both ends.")
    assert problems[4].node_ids == ["ghost"] and "Remove the link, or add the node" in problems[4].message


def test_cycles_are_problems_unless_a_loop_node_is_on_them():
    assert codes([n("a"), n("b")], [ln("a", "b"), ln("b", "a")]) == ["cycle"]
    assert codes([n("a")], [ln("a", "a")]) == ["cycle"]
    assert codes([n("a"), n("b", loop=True)], [ln("a", "b"), ln("b", "a")]) == []
    [cycle] = graph_problems([n("a"), n("b"), n("c"), n("d")], [ln("a", "b"), ln("b", "c"), ln("c", "a"), ln("c", "d")])
    assert cycle.node_ids == ["a", "b", "c"] and not cycle.fixable and '{"loop": true}' in cycle.message


def test_a_long_chain_is_checked_without_recursion():
    nodes = [n(f"n{i}") for i in range(5000)]
    assert graph_problems(nodes, [ln(f"n{i}", f"n{i + 1}") for i in range(4999)]) == []


def test_the_mechanical_fixes_leave_what_needs_a_decision():
    fixed = fix_graph([n("a"), n("a", "other"), n("a_2"), n("b")],
                      [ln("a", "b"), ln("a", "b"), ln("b", "zz"), ln("b", "a"), ln("", "")])
    assert [x.id for x in fixed.nodes] == ["a", "a_3", "a_2", "b"]
    assert fixed.links == [ln("a", "b"), ln("b", "a")]
    assert fixed.fixed[0] == "renamed the second node 'a' (other) to 'a_3'" and len(fixed.fixed) == 4
    assert [p.code for p in fixed.remaining] == ["cycle"]


def graph(*nodes: GraphNode, links=()) -> GraphContent:
    return GraphContent(name="G", nodes=list(nodes), links=list(links))


def test_an_edit_applies_in_order_and_removing_a_node_takes_its_links():
    start = graph(GraphNode(id="a", block_id="x", input_default={"k": 1, "drop": 2}), n("b"), n("c"),
                  links=[ln("a", "b"), ln("b", "c")])
    edited = apply_edit(start, GraphEdit(
        name="H", remove_nodes=["c"], change_nodes=[{"id": "a", "input_default": {"drop": None, "new": 3}}],
        add_nodes=[n("d")], add_links=[ln("b", "d")], remove_links=[ln("a", "b")]))
    assert edited.name == "H" and [x.id for x in edited.nodes] == ["a", "b", "d"]
    assert edited.nodes[0].input_default == {"k": 1, "new": 3} and edited.links == [ln("b", "d")]


@pytest.mark.parametrize(("edit", "refusal"), [
    (GraphEdit(remove_nodes=["zz"]), "There is no node 'zz' to remove."),
    (GraphEdit(change_nodes=[{"id": "zz"}]), "There is no node 'zz' to change."),
    (GraphEdit(add_nodes=[n("a")]), "A node 'a' already exists"),
    (GraphEdit(remove_links=[ln("b", "a")]), "There is no link b.o -> a.i to remove."),
    (GraphEdit(add_links=[ln("a", "b")]), "The link a.o -> b.i already exists."),
    (GraphEdit(name="G"), "The edit changes nothing."),
])
def test_an_edit_naming_what_is_not_there_is_refused(edit, refusal):
    with pytest.raises(EditRefused, match=refusal.replace(".", r"\.")):
        apply_edit(graph(n("a"), n("b"), links=[ln("a", "b")]), edit)
