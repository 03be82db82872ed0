"""The counterexample of a refutation, in the shapes of the JSON contract.

A counterexample is JSON at every boundary (``--format json``, the verdict cache, worker
replies), so its shapes are ``TypedDict``s: the type is the contract, and a value is the
plain dict that is printed. Three shapes:

- ``ModelData``: what the engine reads off a model (``engine/extract.py``), in pfns and raw
  numbers; the interpreter replays it (``interp.py``), and a presented counterexample
  keeps it under ``model``. The values it runs on alone (no trace, no violation) are
  ``ModelValues``;
- ``SpecCounterexample``: a spec check's refutation made readable (``explain.present``):
  hex addresses, chunks with their sizes, the violated condition with its source line;
- ``MachineCounterexample``: a machine's answer (``machine/questions.py``): the witness
  the question found, with the keys of a spec check's besides, so that every report
  reads both.

``Counterexample`` is either presented shape; ``is_machine`` tells them apart. Keys one
shape or one kind of claim leaves out are ``NotRequired``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict, TypeGuard, final

# ---------------------------------------------------------------- the engine's model


class ModelLayout(TypedDict):
    """The layout a model gives, in pfns (``engine/layout.py`` builds it). After the
    verdict cache's JSON round trip the tuples are lists and the keys of
    ``zone_movable_pfn`` strings; its readers take either."""

    ranges: list[tuple[int, int, int, bool]]  # (start, end, nid, mirror), sorted
    nodes: list[int]
    zone_movable_pfn: dict[int, int]  # nid -> where its ZONE_MOVABLE starts (0: none)
    arch_zones: list[tuple[int, int]]  # per zone index: the architecture's (lowest, highest) pfn
    mirrored_kernelcore: bool


class ModelWitness(TypedDict):
    """The value the model gives one witness: of a claim's `forall`, a requirement in a
    loop, a function's argument (``role``)."""

    name: str
    site: int  # the quantifier's site in the typed program
    label: str  # "claim", or the trace node ("n3") the witness belongs to
    role: str  # "witness", "argument", "initial"
    type: str
    value: Any  # an int, a bool, or a struct's fields by name


class InitialValue(TypedDict):
    """One cell of the initial (garbage) memory the counterexample reads."""

    field: str
    index: int
    value: int | bool


class ModelValues(TypedDict):
    """The model's values of everything a check reads: what the interpreter runs on."""

    params: dict[str, Any]  # name -> int, bool, or a struct's fields (a chunk: pfn, order)
    param_functions: dict[str, list[list[Any]]]  # name -> [[arguments], value] rows
    layout: ModelLayout
    witnesses: list[ModelWitness]
    initial: list[InitialValue]


class ModelViolated(TypedDict):
    """What a model violates, as the engine names it (``engine/formulas.py``); a presented
    counterexample's ``Violated`` is made from it."""

    kind: Literal["claim", "always", "after", "requirement", "invariant"]
    check: NotRequired[str]  # claim: the check's name
    name: NotRequired[str]  # requirement: the require's name
    step: NotRequired[str | None]  # always, after, requirement: the step that ran last
    node: NotRequired[str]  # always, after, requirement: the trace node ("n3")
    at: NotRequired[str]  # requirement, invariant: where in the source
    fn: NotRequired[str]  # invariant: the function whose loop invariant fails on entry


class ModelData(ModelValues):
    """The raw counterexample: the model's values, the trace and what it violates."""

    trace: list[str]  # the steps, in order
    violated: ModelViolated
    # the profile a model of several profiles at once refutes, until the engine files it
    profile: NotRequired[str]


# ---------------------------------------------------------------- presented: both shapes


class Range(TypedDict):
    """A memory range of a node, byte addresses and pfns as hex text."""

    start: str
    end: str
    start_pfn: str
    end_pfn: str
    size: str
    mirror: NotRequired[bool]  # a spec layout's MEMBLOCK_MIRROR range
    log_line: NotRequired[int]  # a machine's: the log line it was read from


class Node(TypedDict):
    nid: int
    ranges: list[Range]
    first_deferred_pfn: NotRequired[str]  # a claim over traces: hex, or "ULONG_MAX"
    zone_movable_pfn: NotRequired[str]
    memoryless: NotRequired[bool]  # a machine's node that owns no memory


class Zone(TypedDict):
    zone: str  # "DMA", "DMA32", "Normal", "Movable", "Device"
    start_pfn: str
    end_pfn: str
    start: NotRequired[str]  # a machine's zones give byte addresses too
    end: NotRequired[str]


class Layout(TypedDict):
    """The layout of a presented counterexample: empty when the check reads none."""

    nodes: list[Node]
    zones: list[Zone]
    mirrored_kernelcore: NotRequired[bool]


class MachineLayoutData(Layout):
    """A machine's layout: where it was read, and which boot of the log."""

    source: str
    boot: int


class Chunk(TypedDict):
    name: str
    pfn: str
    order: int
    phys: NotRequired[str]  # left out when the order is too large to be a size (>= 64)
    size: NotRequired[str]


class Read(TypedDict):
    """A struct page a failed requirement read (the replay finds them)."""

    read: str  # the cell as the spec names it: "page[last]"
    pfn: str


class Violated(TypedDict):
    """The condition the counterexample breaks."""

    kind: str  # "claim", "always", "after", "requirement"; "machine" for a machine's answer
    text: NotRequired[str]  # the source line (a spec) or the claim and its witness (a machine)
    at: NotRequired[str]  # file:line:col of the condition
    name: NotRequired[str]  # the requirement's, or the machine question's
    step: NotRequired[str | None]  # the step in which it fails (a claim over traces)
    check: NotRequired[str]  # the check's (a claim over no trace)
    reads: NotRequired[list[Read]]


# ---------------------------------------------------------------- a machine's witness


class WitnessPage(TypedDict):
    """A page on one side of the node change."""

    pfn: str
    phys: str
    nid: int
    log_line: NotRequired[int]


class Section(TypedDict):
    number: int
    start: str
    end: str
    size: str


class WitnessChunk(TypedDict):
    pfn: str
    order: int
    phys: str
    size: str


class Boundary(TypedDict):
    pfn: str
    phys: str


class NodeSpan(TypedDict):
    nid: int
    start_pfn: str
    end_pfn: str


class Spans(TypedDict):
    owner: NodeSpan
    found: NodeSpan


@final
class SectionWitness(TypedDict):
    """section-single-node: the lowest section that holds memory of two nodes."""

    section: Section
    nodes: list[int]  # the two nodes
    pages: list[WitnessPage]  # the last page of one, the first of the other


@final
class ChunkWitness(TypedDict):
    """folio-alignment-single-node, pages-chunk-single-node: the lowest aligned block
    across a node boundary."""

    chunk: WitnessChunk
    nodes: list[int]
    boundary: Boundary
    pages: list[WitnessPage]
    call: NotRequired[str]  # pages-chunk-single-node: the kho_preserve_pages() call that makes it


@final
class ZoneSearchWitness(TypedDict):
    """zone-search-nid: the lowest pfn the search gives to another node than its owner."""

    pfn: str
    phys: str
    owner: int
    found: int
    spans: Spans
    log_line: NotRequired[int]


Witness = SectionWitness | ChunkWitness | ZoneSearchWitness


# ---------------------------------------------------------------- the two presented shapes


@final
class SpecCounterexample(TypedDict):
    layout: Layout
    chunks: list[Chunk]
    values: dict[str, Any]  # the claim's witnesses: hex text, numbers, bools
    params: dict[str, Any]  # the params the check reads
    trace: list[str]
    violated: Violated
    model: ModelData  # what the replay runs


@final
class MachineCounterexample(TypedDict):
    question: str
    witness: Witness
    occurrences: int  # how many places break the claim
    layout: MachineLayoutData
    chunks: list[Chunk]
    values: dict[str, str | int]  # what the witness is: a pfn, a node, a section's number
    params: dict[str, int]  # PAGE_SHIFT, SECTION_SIZE_BITS, MAX_PAGE_ORDER
    trace: list[str]  # empty: a machine's answer has no trace
    violated: Violated


Counterexample = SpecCounterexample | MachineCounterexample


def is_machine(cx: Counterexample | Mapping[str, Any]) -> TypeGuard[MachineCounterexample]:
    """A machine's answer, not a spec check's: only it names a witness. Takes any JSON
    object too: a counterexample read back from a report or the cache is one."""
    return "witness" in cx


__all__ = [
    "Boundary",
    "Chunk",
    "ChunkWitness",
    "Counterexample",
    "InitialValue",
    "Layout",
    "MachineCounterexample",
    "MachineLayoutData",
    "ModelData",
    "ModelLayout",
    "ModelValues",
    "ModelViolated",
    "ModelWitness",
    "Node",
    "NodeSpan",
    "Range",
    "Read",
    "Section",
    "SectionWitness",
    "Spans",
    "SpecCounterexample",
    "Violated",
    "Witness",
    "WitnessChunk",
    "WitnessPage",
    "Zone",
    "ZoneSearchWitness",
    "is_machine",
]
