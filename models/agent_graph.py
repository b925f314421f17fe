"""Agent graphs: the blocks of an agent (nodes) wired output to input (links), owned by one user and
versioned (every saved change is the next version).

These are the shapes the graph store, the agent-building tools and the model read. The REST bodies
that carry them (stricter, with the spec's limits) are in `models/api.py`.
"""

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

MAX_GRAPH_NODES = 1_000
MAX_GRAPH_LINKS = 2_000
GRAPH_NAME_MAX_CHARS = 200
GRAPH_DESCRIPTION_MAX_CHARS = 4_000
GRAPH_ID_MAX_CHARS = 128  # a node's id, a block's id, a port's name
# How deep a node's `input_default` and `metadata` may nest (the object itself is one level).
NODE_JSON_MAX_DEPTH = 5


class GraphNode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=GRAPH_ID_MAX_CHARS, description="Unique within the graph.")
    block_id: str = Field(min_length=1, max_length=GRAPH_ID_MAX_CHARS, description="The block this node runs.")
    input_default: dict[str, Any] = Field(default_factory=dict, description="Fixed values of the block's inputs.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="For the builder (position, label...).")


class GraphLink(BaseModel):
    """Joins a source node's output to a sink node's input. An empty end is a dangling link."""

    model_config = ConfigDict(extra="forbid")

    source_id: str = Field(max_length=GRAPH_ID_MAX_CHARS)
    source_name: str = Field(max_length=GRAPH_ID_MAX_CHARS, description="The source's output.")
    sink_id: str = Field(max_length=GRAPH_ID_MAX_CHARS)
    sink_name: str = Field(max_length=GRAPH_ID_MAX_CHARS, description="The sink's input.")

    def key(self) -> tuple[str, str, str, str]:
        return self.source_id, self.source_name, self.sink_id, self.sink_name

    def label(self) -> str:
        return f"{self.source_id}.{self.source_name} -> {self.sink_id}.{self.sink_name}"


class GraphContent(BaseModel):
    """What a graph is, without its identity: what a create or an update saves."""

    name: str
    description: str = ""
    nodes: list[GraphNode] = Field(default_factory=list)
    links: list[GraphLink] = Field(default_factory=list)


class AgentGraph(GraphContent):
    id: str
    version: int = Field(ge=1, description="1 when created; each saved change adds one.")
    created_at: datetime
    updated_at: datetime


class GraphSummary(BaseModel):
    id: str
    name: str
    description: str
    version: int
    node_count: int
    link_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, graph: AgentGraph) -> "GraphSummary":
        return cls(id=graph.id, name=graph.name, description=graph.description, version=graph.version,
                   node_count=len(graph.nodes), link_count=len(graph.links), created_at=graph.created_at,
                   updated_at=graph.updated_at)


ProblemCode = Literal["duplicate_node_id", "dangling_link", "link_to_missing_node", "duplicate_link", "cycle"]


class GraphProblem(BaseModel):
    """One thing wrong with a graph, said so that the model can act on it."""

    code: ProblemCode
    message: str
    fixable: bool = Field(description="fix_agent_graph can fix it mechanically.")
    node_ids: list[str] = Field(default_factory=list)
    link: Optional[GraphLink] = None

    def identity(self) -> tuple:
        """The same problem found again (before and after an edit) has the same identity."""
        return self.code, tuple(self.node_ids), self.link.key() if self.link else None


class NodeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The node to change.")
    block_id: Optional[str] = Field(default=None, min_length=1, max_length=GRAPH_ID_MAX_CHARS)
    input_default: Optional[dict[str, Any]] = Field(default=None, description="Merged in; a null value removes "
                                                                              "the key.")
    metadata: Optional[dict[str, Any]] = Field(default=None, description="Merged in likewise.")


class GraphEdit(BaseModel):
    """Changes to a graph, applied in this order: links removed, nodes removed (with their links),
    nodes changed, nodes added, links added."""

    name: Optional[str] = Field(default=None, min_length=1, max_length=GRAPH_NAME_MAX_CHARS)
    description: Optional[str] = Field(default=None, max_length=GRAPH_DESCRIPTION_MAX_CHARS)
    remove_links: list[GraphLink] = Field(default_factory=list)
    remove_nodes: list[str] = Field(default_factory=list, description="Node ids; their links go too.")
    change_nodes: list[NodeChange] = Field(default_factory=list)
    add_nodes: list[GraphNode] = Field(default_factory=list)
    add_links: list[GraphLink] = Field(default_factory=list)
