"""Applying an edit (`models.agent_graph.GraphEdit`) to a graph's content: what `edit_agent` saves
as the next version. An edit that names what is not there is refused whole, never half applied."""

from typing import Any, Optional

from models.agent_graph import GraphContent, GraphEdit, GraphNode, NodeChange


class EditRefused(ValueError):
    """The edit cannot be applied as asked; the message says why, for the model to correct."""


def _merged(current: dict[str, Any], change: Optional[dict[str, Any]]) -> dict[str, Any]:
    if change is None:
        return current
    merged = {**current, **change}
    return {key: value for key, value in merged.items() if value is not None or key not in change}


def _changed(node: GraphNode, change: NodeChange) -> GraphNode:
    return node.model_copy(update={
        "block_id": change.block_id or node.block_id,
        "input_default": _merged(node.input_default, change.input_default),
        "metadata": _merged(node.metadata, change.metadata),
    })


def apply_edit(content: GraphContent, edit: GraphEdit) -> GraphContent:
    links = list(content.links)
    for link in edit.remove_links:
        if link not in links:
            raise EditRefused(f"There is no link {link.label()} to remove.")
        links.remove(link)
    nodes = list(content.nodes)
    ids = {n.id for n in nodes}
    for node_id in edit.remove_nodes:
        if node_id not in ids:
            raise EditRefused(f"There is no node {node_id!r} to remove.")
    removed = set(edit.remove_nodes)
    nodes = [n for n in nodes if n.id not in removed]
    links = [link for link in links if link.source_id not in removed and link.sink_id not in removed]
    changes = {c.id: c for c in edit.change_nodes}
    unknown = [c.id for c in edit.change_nodes if c.id not in {n.id for n in nodes}]
    if unknown:
        raise EditRefused(f"There is no node {unknown[0]!r} to change.")
    nodes = [_changed(n, changes[n.id]) if n.id in changes else n for n in nodes]
    taken = {n.id for n in nodes}
    for node in edit.add_nodes:
        if node.id in taken:
            raise EditRefused(f"A node {node.id!r} already exists; change it, or give the new node another id.")
        taken.add(node.id)
        nodes.append(node)
    for link in edit.add_links:
        if link in links:
            raise EditRefused(f"The link {link.label()} already exists.")
        links.append(link)
    edited = GraphContent(name=edit.name if edit.name is not None else content.name,
                          description=edit.description if edit.description is not None else content.description,
                          nodes=nodes, links=links)
    if edited == GraphContent(name=content.name, description=content.description, nodes=content.nodes,
                              links=content.links):
        raise EditRefused("The edit changes nothing.")
    return edited
