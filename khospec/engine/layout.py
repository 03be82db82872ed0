"""Memory layouts for the lowering: symbolic (every layout at once) or concrete.

A symbolic layout is not a fixed number of nodes and ranges. Every question the spec
asks of the layout (which range holds pfn p, where node n's span starts, which node
comes first, ...) introduces a *witness range*: the memblock range that answers it.
Universally quantified facts about ranges and nodes are instantiated over every witness
range, pairwise disjointness included, until no new witness appears. A pfn chosen
among pfns already asked about (a branch, a loop's iterations) is no new question: its
answers are the same choice among theirs (SymbolicLayout._cases); nor is a pfn term z3's
rewriter makes equal to one asked about (SymbolicLayout._key).

Why this is exact (the small-model argument, see ARCHITECTURE.md):
- proved: any real layout, however many ranges, gives values to the witnesses (the
  ranges that really answer each question) satisfying every constraint added here, so
  "no model" means no layout violates the claim;
- refuted: the witness ranges of a model are themselves a layout (disjoint, each fact
  about ranges and nodes instantiated on all of them), and every question asked has
  the same answer in it, so the counterexample is a real, small layout.
Quantifiers over plain integers (pfns) have no such guarantee; they are instantiated
on the pfns the query mentions and the counterexample must then replay (interp.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple, Protocol

import z3

from khospec import ir
from khospec.counterexample import ModelLayout
from khospec.engine.bv import StructVal
from khospec.engine.terms import apply, bv_value, choose, conj, disj, implies, is_true, negate, ule, ult
from khospec.types import BOOL, INT, MEM_RANGE, ULONG, BoolType, IntType, Type

Pred = Callable[[Any], Any]


class LayoutLimit(Exception):
    """The witness closure did not settle within the engine's limits."""


class Layout(Protocol):
    """What the lowering and the solver ask of a layout, whichever kind it is.

    z3 has no type stubs, so a term is ``Any``: a pfn is a 64-bit term, a node id a
    32-bit one, a range a MEM_RANGE ``StructVal``, a fact a boolean term. Some answers
    come with constraints of their own, which ``close`` hands over."""

    @property
    def kind(self) -> Literal["symbolic", "concrete", "bounded"]: ...

    # -- the builtins of the language (LAYOUT_BUILTINS below)
    # memblock's view of memory: pfn_node is NUMA_NO_NODE (-1) for a pfn in no range, a
    # node without memory spans [0, 0) (get_pfn_range_for_nid()), and the zone limits
    # are uninterpreted functions unless a concrete layout gives them. pfn_range of a
    # pfn in no range is left open: the language documents no value for it (and
    # memblock_search_pfn_nid() leaves start and end unset for one), so no proof may
    # depend on it; the symbolic and concrete layouts leave it free, the bounded layout
    # and the interpreter give it (0, 0, NUMA_NO_NODE, false), one of its values
    def pfn_in_ram(self, p: Any) -> Any: ...
    def pfn_node(self, p: Any) -> Any: ...
    def pfn_range(self, p: Any) -> StructVal: ...
    def node_start_pfn(self, n: Any) -> Any: ...
    def node_end_pfn(self, n: Any) -> Any: ...
    def zone_movable_pfn(self, n: Any) -> Any: ...
    def arch_zone_lowest(self, z: Any) -> Any: ...
    def arch_zone_highest(self, z: Any) -> Any: ...
    def mirrored_kernelcore(self) -> Any: ...

    # -- pfns the query asks about
    def note_pfn(self, p: Any) -> None:
        """Where the pfn quantifiers get instantiated (the builtins note their pfns)."""

    def hint_pfn(self, p: Any) -> None:
        """A pfn the query reads state at or quantifies over; every layout ignores it today."""

    # -- quantifiers over the layout; ``origin`` names the spec site a witness answers.
    # The lowering (engine/lower.py) asks forall_* where the quantifier must hold: the
    # answer stands for it, and every real layout satisfies it (a symbolic layout's
    # literal implies only instances), so asserting it loses no layout. It asks
    # witness_* where a universal must fail: an element the solver picks, with the
    # condition that it belongs to the layout.
    def forall_ranges(self, pred: Pred) -> Any: ...
    def exists_range(self, pred: Pred, origin: str) -> Any: ...
    def forall_nodes(self, pred: Pred) -> Any: ...
    def exists_node(self, pred: Pred, origin: str) -> Any: ...
    def witness_node(self, origin: str) -> tuple[Any, Any]:
        """(exists, node): a node of the layout for a refuted ``forall n in nodes``."""

    def witness_range(self, origin: str) -> tuple[Any, StructVal]:
        """(exists, range): a range of the layout for a refuted ``forall r in ranges``."""

    # instantiated on the pfns of note_pfn only: sound for proofs, and a refutation that
    # leans on it is replayed (interp.py decides the quantifier exactly)
    def forall_pfns(self, pred: Pred) -> Any: ...
    # `first n in nodes where cond else default`: the lowest node id with memory that
    # satisfies cond
    def first_node(self, cond: Pred, default: Any, origin: str) -> Any: ...

    # -- solving
    def close(self) -> tuple[list[Any], list[Any]]:
        """(eager, lazy): the constraints the answers so far need, and the instances of
        facts about all ranges, which the solver adds only once a model violates one."""

    def round(self, align_pfns: int, below_pfns: int, node_ids: bool = True) -> Any:
        """The made-up ranges on align_pfns boundaries, below below_pfns, node ids from 0
        (``node_ids``): a readable counterexample. When the ranges are given, the value
        the interpreter gives pfn_range() of a hole, which the replay reads."""

    def existing(self, model: z3.ModelRef) -> int:
        """How many ranges the model makes up (0 when the ranges are given)."""

    def at_most(self, k: int) -> Any:
        """At most k made-up ranges: a smaller counterexample."""

    def extract(self, model: z3.ModelRef) -> ModelLayout: ...


class LayoutBuiltin(NamedTuple):
    """How the lowering answers a builtin that reads the layout."""

    method: str  # a method of Layout
    arity: int


# Every builtin the resolver types as reading the layout (resolve/expressions.py:
# LAYOUT_BUILTINS and LAYOUT_CONSTANTS), with the Layout method that answers it.
LAYOUT_BUILTINS: Mapping[str, LayoutBuiltin] = MappingProxyType({
    "pfn_in_ram": LayoutBuiltin("pfn_in_ram", 1),
    "pfn_node": LayoutBuiltin("pfn_node", 1),
    "pfn_range": LayoutBuiltin("pfn_range", 1),
    "node_start_pfn": LayoutBuiltin("node_start_pfn", 1),
    "node_end_pfn": LayoutBuiltin("node_end_pfn", 1),
    "zone_movable_pfn": LayoutBuiltin("zone_movable_pfn", 1),
    "arch_zone_lowest_possible_pfn": LayoutBuiltin("arch_zone_lowest", 1),
    "arch_zone_highest_possible_pfn": LayoutBuiltin("arch_zone_highest", 1),
    "mirrored_kernelcore": LayoutBuiltin("mirrored_kernelcore", 0),
})


def answer_builtin(layout: Layout, name: str, args: list[Any]) -> Any:
    """The layout's answer to the builtin ``name`` (a key of LAYOUT_BUILTINS) at args."""
    builtin = LAYOUT_BUILTINS[name]
    assert len(args) == builtin.arity, name
    return getattr(layout, builtin.method)(*args)


@dataclass
class WRange:
    """A memory range with symbolic bounds (pfns, [start, end)), one of the layout's
    ranges when ``exists`` holds; ``origin`` says what it stands for (the question a
    witness answers, or its place among a bounded layout's ranges). Every fact about the
    layout's ranges is conditional on ``exists``, so the fields of a range that does not
    exist are free."""

    idx: int
    start: Any
    end: Any
    nid: Any
    mirror: Any
    exists: Any
    origin: str

    def value(self) -> StructVal:
        return StructVal(MEM_RANGE, (self.start, self.end, self.nid, self.mirror))

    def contains(self, p: Any) -> Any:
        # pfns are unsigned long: unsigned comparisons
        return conj(ule(self.start, p), ult(p, self.end))


@dataclass
class _Obligation:
    """A fact to instantiate on every range (or pfn) of the pool, now and later."""

    pool: str  # "ranges" or "pfns"
    fn: Callable[[Any], Any]
    # positions in the pool already instantiated: pools only grow, so a position names
    # one item for good
    done: set[int] = field(default_factory=set)


class _RangeLayout:
    """What the layouts made of ranges with symbolic bounds (symbolic, bounded) share:
    the architecture's zone limits, ZONE_MOVABLE and kernelcore=mirror as uninterpreted
    functions, the pool of pfns asked about, the readability pass, the model's layout."""

    ranges: list[WRange]
    ctx: z3.Context
    pfn_pool: list[Any]
    _pfn_ids: set[int]
    _fresh: int
    # created by each subclass's __init__, where the order of z3's declarations is fixed
    _movable: z3.FuncDeclRef
    _zlo: z3.FuncDeclRef
    _zhi: z3.FuncDeclRef
    _mirrored: z3.BoolRef

    def _name(self, base: str) -> str:
        self._fresh += 1
        return f"{base}!{self._fresh}"

    def note_pfn(self, p: Any) -> None:
        """A pfn the query asks the layout about: where pfn quantifiers get instantiated
        (the layout primitives are their triggers)."""
        if p.get_id() not in self._pfn_ids and not z3.is_bv_value(p):
            self._pfn_ids.add(p.get_id())
            self.pfn_pool.append(p)

    def hint_pfn(self, p: Any) -> None:
        pass

    def zone_movable_pfn(self, n: Any) -> Any:
        return apply(self._movable, n)

    def arch_zone_lowest(self, z: Any) -> Any:
        return apply(self._zlo, z)

    def arch_zone_highest(self, z: Any) -> Any:
        return apply(self._zhi, z)

    def mirrored_kernelcore(self) -> Any:
        return self._mirrored

    def round(self, align_pfns: int, below_pfns: int, node_ids: bool = True) -> Any:
        return round_ranges(self.ranges, self.ctx, align_pfns, below_pfns, node_ids)

    def existing(self, model: z3.ModelRef) -> int:
        return sum(1 for r in self.ranges if is_true(model.eval(r.exists, model_completion=True)))

    def at_most(self, k: int) -> Any:
        return at_most_ranges(self.ranges, self.ctx, k)

    def extract(self, model: z3.ModelRef) -> ModelLayout:
        # a set: witnesses answering different questions may be one range (the
        # disjointness facts allow equal ranges), which the layout lists once
        ranges: set[tuple[int, int, int, bool]] = set()
        for r in self.ranges:
            if is_true(model.eval(r.exists, model_completion=True)):
                ranges.add(
                    (
                        model.eval(r.start, model_completion=True).as_long(),
                        model.eval(r.end, model_completion=True).as_long(),
                        INT.wrap(model.eval(r.nid, model_completion=True).as_long()),
                        is_true(model.eval(r.mirror, model_completion=True)),
                    )
                )
        nodes = sorted({nid for _, _, nid, _ in ranges})
        return {
            "ranges": sorted(ranges),
            "nodes": nodes,
            "zone_movable_pfn": {
                n: model.eval(self._movable(bv_value(n & 0xFFFFFFFF, 32, self.ctx)),
                              model_completion=True).as_long()
                for n in nodes
            },
            # the limits of the five zone types, ZONE_DMA to ZONE_DEVICE (the prelude's
            # enum zone_type), by index, as the replay reads them
            "arch_zones": [
                (
                    model.eval(self._zlo(bv_value(z, 32, self.ctx)), model_completion=True).as_long(),
                    model.eval(self._zhi(bv_value(z, 32, self.ctx)), model_completion=True).as_long(),
                )
                for z in range(5)
            ],
            "mirrored_kernelcore": is_true(model.eval(self._mirrored, model_completion=True)),
        }


class SymbolicLayout(_RangeLayout):
    """Every layout at once, with any number of nodes and ranges: each question creates
    witness ranges and the facts about all ranges become obligations, instantiated on
    every witness by ``close`` (why this is exact: the module docstring)."""

    kind: Final = "symbolic"

    def __init__(self, ctx: z3.Context, params: Callable[[str, tuple[Any, ...]], Any]) -> None:
        self.ctx = ctx
        self.params = params
        self.ranges: list[WRange] = []
        self.hard: list[Any] = []
        self.obligations: list[_Obligation] = []
        self.pfn_pool: list[Any] = []
        self._pfn_ids: set[int] = set()
        # one answer per pfn term and per node term (keyed by z3's term id), so that
        # every question about the same term gets the same witnesses
        self._range_of: dict[int, tuple[Any, WRange]] = {}
        # pfn terms z3's rewriter makes equal share a key (``_key``)
        self._asked: dict[int, Any] = {}  # key -> the pfn term asked about
        self._normal: z3.Context | None = None
        self._by_normal: dict[int, int] = {}  # id of a rewritten term -> key
        self._keys: dict[int, int] = {}  # term id -> key, once rewritten
        # the terms behind those ids, kept alive: z3 gives a freed term's id to a new one
        self._keep: list[Any] = []
        self._span: dict[int, tuple[Any, WRange, WRange]] = {}
        # the witnesses whose disjointness from every earlier one is instantiated
        self._pairs_done = 0
        self.incomplete: list[str] = []
        self._fresh = 0
        self._movable = z3.Function("zone_movable_pfn", z3.BitVecSort(32, ctx), z3.BitVecSort(64, ctx))
        self._zlo = z3.Function("arch_zone_lowest_possible_pfn", z3.BitVecSort(32, ctx), z3.BitVecSort(64, ctx))
        self._zhi = z3.Function("arch_zone_highest_possible_pfn", z3.BitVecSort(32, ctx), z3.BitVecSort(64, ctx))
        self._mirrored = z3.Bool("mirrored_kernelcore", ctx)

    # -- witnesses
    def new_range(self, origin: str, exists: Any, nid: Any | None = None) -> WRange:
        """A new witness, a range of the layout when ``exists`` holds; ``nid`` ties it to
        a node term the question is about."""
        i = len(self.ranges)
        # a fact whose instances keep asking new questions (a forall over ranges whose
        # body needs another range) never settles: stop, and the check is unknown
        if len(self.ranges) >= 400:
            raise LayoutLimit("more than 400 witness ranges")
        c = self.ctx
        r = WRange(
            i,
            z3.BitVec(f"r{i}.start", 64, c),
            z3.BitVec(f"r{i}.end", 64, c),
            nid if nid is not None else z3.BitVec(f"r{i}.nid", 32, c),
            z3.Bool(f"r{i}.mirror", c),
            exists,
            origin,
        )
        self.ranges.append(r)
        # memblock's pfn ranges are never empty (__next_mem_pfn_range() skips a region
        # without a whole page)
        self.hard.append(implies(exists, ult(r.start, r.end)))
        return r

    def range_of(self, p: Any) -> tuple[Any, WRange]:
        """(in_ram, range): whether a range holds p, and a witness for that range.
        Exact both ways: in a real layout in_ram is whether some range holds p and the
        witness is that range; in a model, the hole fact below, instantiated on every
        witness, keeps p out of all of the model's ranges when in_ram is false."""
        key = self._key(p)
        hit = self._range_of.get(key)
        if hit is not None:
            return hit
        self.note_pfn(p)
        in_ram = z3.Bool(self._name("in_ram"), self.ctx)
        r = self.new_range("the range holding a pfn", in_ram)
        self.hard.append(implies(in_ram, r.contains(p)))
        # a hole: no range of the layout holds p
        def hole(w: WRange, p: Any = p, in_ram: Any = in_ram) -> Any:
            return implies(conj(w.exists, negate(in_ram)), negate(w.contains(p)))

        self.obligations.append(_Obligation("ranges", hole))
        self._range_of[key] = (in_ram, r)
        self._asked[key] = p
        return in_ram, r

    def _key(self, p: Any) -> int:
        """One key for pfn terms z3's rewriter makes equal: `pfn + (1 << 0) - 1` is
        `pfn`, and a witness of its own for it would be equal to pfn's only through the
        disjointness facts (the exit state 0 of the loop in kho_preserve_pages()). The
        key is the id of one of those terms in the query's context.

        The rewriting happens in a context of its own: z3's rewriter makes terms, and the
        ids of the query's terms, which steer z3's search, must not move. That context
        costs milliseconds to make, a twentieth of a small check's lowering, so it is made
        only when needed (``_side``): once a term has an operation on constants alone
        (the exit state substituted into a loop's body), or has a choice under an
        operation to split (``_cases``); until then a term is its own key."""
        key = self._keys.get(p.get_id())
        if key is not None:
            return key
        # until then every key is its term's own id: a pfn asked about before needs no
        # walk (lookups repeat, at every read of a trace's state)
        if self._normal is None and (p.get_id() in self._range_of or not _folds(p)):
            return int(p.get_id())
        key = self._keys[p.get_id()] = self._by_normal.setdefault(self._rewritten(self._side(p)), int(p.get_id()))
        self._keep.append(p)
        return key

    def _side(self, p: Any) -> Any:
        """p in the context where terms are rewritten and substituted, made on first use
        with every pfn asked about so far rewritten in it."""
        if self._normal is None:
            self._normal = z3.Context()
            for k, q in self._asked.items():
                self._by_normal.setdefault(self._rewritten(q.translate(self._normal)), k)
        out = p.translate(self._normal)
        self._keep.append(out)
        return out

    def _rewritten(self, side: Any) -> int:
        """The id of ``side`` (a term of the rewriting's context) rewritten."""
        normal = z3.simplify(side)
        self._keep.append(normal)
        return int(normal.get_id())

    def pfn_in_ram(self, p: Any) -> Any:
        return self._by_cases(p, lambda q: self.range_of(q)[0])

    def pfn_node(self, p: Any) -> Any:
        def node(q: Any) -> Any:
            in_ram, r = self.range_of(q)
            # NUMA_NO_NODE for a hole, as memblock_search_pfn_nid() answers
            return choose(in_ram, r.nid, bv_value(-1 & 0xFFFFFFFF, 32, self.ctx))

        return self._by_cases(p, node)

    def pfn_range(self, p: Any) -> StructVal:
        # for a hole the witness does not exist and its fields are free: whatever value
        # a hole's range is given elsewhere is among them
        def pick(c: Any, a: StructVal, b: StructVal) -> StructVal:
            return StructVal(a.ty, tuple(choose(c, x, y) for x, y in zip(a.fields, b.fields, strict=True)))

        out: StructVal = self._by_cases(p, lambda q: self.range_of(q)[1].value(), pick)
        return out

    def _by_cases(self, p: Any, leaf: Callable[[Any], Any], pick: Callable[[Any, Any, Any], Any] = choose) -> Any:
        """``leaf`` of p, or of the pfns p chooses among (``_cases``), chosen as p does."""
        tree = self._cases(p)
        if tree is None:
            return leaf(p)

        def walk(t: Any) -> Any:
            return leaf(t) if not isinstance(t, tuple) else pick(t[0], walk(t[1]), walk(t[2]))

        return walk(tree)

    def _cases(self, p: Any) -> Any:
        """A pfn computed from a choice (``ite``, from a branch, a loop's unrolled
        iterations or min()) as a tree of (condition, then, else) whose leaves are the
        pfns the choice selects, when every leaf is already asked about; else None. The
        question about p is then the answers about the leaves: the same witnesses, where a
        witness of its own for p would be equal to one of them only through the
        disjointness facts (f(ite(c, a, b)) is ite(c, f(a), f(b)) for any f).

        A choice under an operation (`pfn + (1 << order) - 1`) is split by substitution
        in the rewriting's context: the terms a split makes there do not move the ids of
        the query's terms, which steer z3's search, where the split fails (it does, on
        every pfn of the trace proofs). The tree is made of the query's own terms: the
        choices' conditions and the pfns asked about."""
        if self._key(p) in self._range_of:
            return None
        budget = [CASE_LEAVES]
        conditions: dict[int, Any] = {}  # a condition in the rewriting's context -> its own

        def leaf(key: int) -> Any:
            budget[0] -= 1
            return self._asked[key] if budget[0] >= 0 else None

        def split(q: Any, depth: int) -> Any:
            key = self._key(q)
            if key in self._range_of:
                return leaf(key)
            # a tree of CASE_LEAVES leaves is less deep than that: deeper, give up
            # before substituting through a long chain of choices (count_trailing_zeros())
            if depth >= CASE_LEAVES:
                return None
            if z3.is_app_of(q, z3.Z3_OP_ITE):
                c, a, b = q.children()
                then = split(a, depth + 1)
                other = split(b, depth + 1) if then is not None else None
                return None if other is None else (c, then, other)
            choices = list(_ites(q))
            if not choices:
                return None
            for t in choices:
                c = t.children()[0]
                conditions[self._side(c).get_id()] = c
            return split_side(self._side(q), depth)

        def split_side(q: Any, depth: int) -> Any:
            key = self._by_normal.get(self._rewritten(q))
            if key is not None and key in self._range_of:
                return leaf(key)
            choice = _first_ite(q) if depth < CASE_LEAVES else None
            if choice is None:
                return None
            c, a, b = choice.children()
            own = conditions.get(c.get_id())
            if own is None:  # the condition held the choice substituted before
                return None
            then = split_side(z3.substitute(q, (choice, a)), depth + 1)
            other = split_side(z3.substitute(q, (choice, b)), depth + 1) if then is not None else None
            return None if other is None else (own, then, other)

        return split(p, 0)

    def _node_span(self, n: Any) -> tuple[Any, WRange, WRange]:
        """(is_node, lowest, highest): whether node n has memory, and witnesses for its
        lowest and highest ranges, whose start and end are n's span (the least start
        and greatest end of its ranges, as get_pfn_range_for_nid() computes it). The
        ``inside`` fact, on every witness of node n, makes the pair the extremes among
        the ranges of n a model has, and says n has memory if any of them exists."""
        key = n.get_id()
        hit = self._span.get(key)
        if hit is not None:
            return hit
        is_node = z3.Bool(self._name("is_node"), self.ctx)
        lo = self.new_range("the lowest range of a node", is_node, n)
        hi = self.new_range("the highest range of a node", is_node, n)
        def inside(w: WRange, n: Any = n, is_node: Any = is_node, lo: WRange = lo, hi: WRange = hi) -> Any:
            return implies(conj(w.exists, w.nid == n),
                           conj(is_node, ule(lo.start, w.start), ule(w.end, hi.end)))

        self.obligations.append(_Obligation("ranges", inside))
        self._span[key] = (is_node, lo, hi)
        return is_node, lo, hi

    def _through_ite(self, n: Any, f: Callable[[Any], Any]) -> Any:
        # pfn_node() is ite(in_ram, range.nid, NUMA_NO_NODE): ask about each node term
        # separately, so a node's span has one pair of witnesses whoever asks
        if z3.is_app_of(n, z3.Z3_OP_ITE):
            c, a, b = n.children()
            return choose(c, self._through_ite(a, f), self._through_ite(b, f))
        return f(n)

    def node_start_pfn(self, n: Any) -> Any:
        def start(m: Any) -> Any:
            is_node, lo, _ = self._node_span(m)
            # a node without memory spans [0, 0), as get_pfn_range_for_nid() leaves it
            return choose(is_node, lo.start, bv_value(0, 64, self.ctx))

        return self._through_ite(n, start)

    def node_end_pfn(self, n: Any) -> Any:
        def end(m: Any) -> Any:
            is_node, _, hi = self._node_span(m)
            return choose(is_node, hi.end, bv_value(0, 64, self.ctx))

        return self._through_ite(n, end)

    # -- quantifiers over the layout
    def forall_ranges(self, pred: Pred) -> Any:
        # a literal standing for the quantifier where it must hold, instantiated on every
        # witness, present and future. Enough both ways: a real layout satisfies every
        # instance, and a model's layout is made of the witnesses, so the fact holds on
        # all of its ranges
        q = z3.Bool(self._name("forall_ranges"), self.ctx)
        self.obligations.append(_Obligation("ranges", lambda w: implies(conj(q, w.exists), pred(w.value()))))
        return q

    def exists_range(self, pred: Pred, origin: str) -> Any:
        e = z3.Bool(self._name("exists_range"), self.ctx)
        w = self.new_range(origin, e)
        return conj(e, pred(w.value()))

    def forall_nodes(self, pred: Pred) -> Any:
        # a layout's nodes are the nodes of its ranges, so the instances on every
        # witness's node cover every node of a model's layout
        q = z3.Bool(self._name("forall_nodes"), self.ctx)
        self.obligations.append(_Obligation("ranges", lambda w: implies(conj(q, w.exists), pred(w.nid))))
        return q

    def exists_node(self, pred: Pred, origin: str) -> Any:
        e = z3.Bool(self._name("exists_node"), self.ctx)
        w = self.new_range(origin, e)
        return conj(e, pred(w.nid))

    def witness_node(self, origin: str) -> tuple[Any, Any]:
        """A fresh node of the layout (for a refuted `forall n in nodes`)."""
        # a node of a layout is one with memory: the node of a witness range
        e = z3.Bool(self._name("node_exists"), self.ctx)
        w = self.new_range(origin, e)
        return e, w.nid

    def witness_range(self, origin: str) -> tuple[Any, StructVal]:
        e = z3.Bool(self._name("range_exists"), self.ctx)
        w = self.new_range(origin, e)
        return e, w.value()

    def forall_pfns(self, pred: Pred) -> Any:
        """Instantiated on the pfns the query mentions: exact only for proofs.

        Instances of a true fact hold in every layout, so a proof stands; a model may
        break the fact at a pfn outside the pool, so a refutation that depends on it is
        only as good as its replay, which decides the quantifier on the counterexample."""
        q = z3.Bool(self._name("forall_pfns"), self.ctx)
        self.incomplete.append("a universally quantified pfn assumption")
        self.obligations.append(_Obligation("pfns", lambda p: implies(q, pred(p))))
        return q

    def first_node(self, cond: Pred, default: Any, origin: str) -> Any:
        """Found: f is a node with memory (a witness range of node f exists) that
        satisfies cond, and the obligation says no witness range of a lower node does;
        not found: no witness range's node does. Node ids are compared signed; they are
        >= 0 (the prelude's layout_ranges axiom)."""
        found = z3.Bool(self._name("found"), self.ctx)
        f = z3.BitVec(self._name("first_node"), 32, self.ctx)
        self.new_range(origin, found, f)
        self.hard.append(implies(found, cond(f)))
        self.obligations.append(
            _Obligation(
                "ranges",
                lambda w: implies(conj(w.exists, disj(negate(found), w.nid < f)), negate(cond(w.nid))),
            )
        )
        return choose(found, f, default)

    # -- closure
    def close(self) -> tuple[list[Any], list[Any]]:
        """Instantiate every obligation on every witness until nothing new appears.

        Returns (eager, lazy): the witnesses' own constraints, and the instances of the
        facts about all ranges (pairwise disjointness included). The solver adds a lazy
        instance only once a model violates it (see solve.py), which keeps the queries
        small; a model that violates none satisfies them all."""
        eager: list[Any] = []
        lazy: list[Any] = []
        # an instance may ask the layout new questions (a fact about a range that reads
        # pfn_node of its start), so new witnesses and pfns, and new obligations, appear
        # while instantiating: rounds until one adds nothing
        for _ in range(40):
            changed = False
            for ob in list(self.obligations):
                pool: list[Any] = self.ranges if ob.pool == "ranges" else self.pfn_pool
                for i, item in enumerate(list(pool)):
                    if i in ob.done:
                        continue
                    ob.done.add(i)
                    lazy.append(ob.fn(item))
                    changed = True
            # memblock's ranges do not overlap; two witnesses may also be one range
            # (``same``), since different questions can have the same answer
            while self._pairs_done < len(self.ranges):
                j = self._pairs_done
                b = self.ranges[j]
                for a in self.ranges[:j]:
                    same = conj(a.start == b.start, a.end == b.end, a.nid == b.nid, a.mirror == b.mirror)
                    apart = disj(ule(a.end, b.start), ule(b.end, a.start))
                    lazy.append(implies(conj(a.exists, b.exists), disj(same, apart)))
                self._pairs_done += 1
                changed = True
            if self.hard:
                eager.extend(self.hard)
                self.hard = []
                changed = True
            if not changed:
                return eager, lazy
        raise LayoutLimit("the layout's witness closure did not settle")


# at most this many pfns a choice of pfns stands for (SymbolicLayout._cases)
CASE_LEAVES: Final = 8


def _folds(t: Any) -> bool:
    """Whether t has an operation whose operands are all numerals."""
    seen: set[int] = set()
    todo = [t]
    while todo:
        q = todo.pop()
        if q.get_id() in seen or not z3.is_app(q) or z3.is_const(q):
            continue
        seen.add(q.get_id())
        kids = q.children()
        if all(z3.is_bv_value(k) for k in kids):
            return True
        todo.extend(kids)
    return False


def _ites(t: Any) -> Iterator[Any]:
    """The ``ite`` terms of bit-vector sort in t, in pre-order, each once."""
    seen: set[int] = set()
    todo = [t]
    while todo:
        q = todo.pop()
        if q.get_id() in seen or not z3.is_app(q):
            continue
        seen.add(q.get_id())
        if z3.is_app_of(q, z3.Z3_OP_ITE) and z3.is_bv(q):
            yield q
        todo.extend(reversed(q.children()))


def _first_ite(t: Any) -> Any:
    """The first ``ite`` of bit-vector sort in t (pre-order), or None."""
    return next(_ites(t), None)


def at_most_ranges(ranges: list[WRange], ctx: z3.Context, k: int) -> Any:
    """At most k of the witness ranges exist: a layout of fewer memory ranges."""
    if not ranges:
        return z3.BoolVal(True, ctx)
    # 16 bits count up to the 400 witnesses new_range allows without wrapping
    one, zero = bv_value(1, 16, ctx), bv_value(0, 16, ctx)
    return ule(z3.Sum(*[choose(r.exists, one, zero) for r in ranges]), bv_value(k, 16, ctx))


def round_ranges(ranges: list[WRange], ctx: z3.Context, align_pfns: int, below_pfns: int,
                 node_ids: bool = True) -> Any:
    """Every existing range starts and ends on a multiple of align_pfns, below below_pfns,
    and (``node_ids``) with node ids numbered from 0 (a node n > 0 only where node n - 1
    has memory too): what a reader takes in at a glance."""
    # a readability constraint: solve.py asserts it behind a literal and drops it when
    # unsatisfiable, so it never decides a verdict
    out = []
    mask = bv_value(align_pfns - 1, 64, ctx)
    one = bv_value(1, 32, ctx)
    for r in ranges:
        shape = [(r.start & mask) == 0, (r.end & mask) == 0, ule(r.end, bv_value(below_pfns, 64, ctx))]
        if node_ids:
            below = [conj(o.exists, o.nid == r.nid - one) for o in ranges if o is not r]
            shape += [ult(r.nid, bv_value(4, 32, ctx)), disj(r.nid == 0, *below)]
        out.append(implies(r.exists, conj(*shape)))
    return conj(*out) if out else z3.BoolVal(True, ctx)


class ConcreteLayout:
    """A layout given by numbers (a `layout` block or an imported boot log)."""

    kind: Final = "concrete"

    def __init__(self, ctx: z3.Context, layout: ir.LayoutDef, page_shift: int,
                 params: Callable[[str, tuple[Any, ...]], Any]) -> None:
        self.ctx = ctx
        self.params = params
        self.layout = layout
        self.page_shift = page_shift
        rs = []
        # bytes to pfns as memblock's pfn iterator does (__next_mem_pfn_range() in
        # mm/memblock.c): the start rounded up, the end down, a range without a whole
        # page left out
        for r in layout.ranges:
            s = -(-r.start >> page_shift)
            e = r.end >> page_shift
            if s < e:
                rs.append((s, e, r.nid, r.mirror))
        rs.sort()
        self.ranges = rs
        self.nodes = sorted({r[2] for r in rs})
        # a node's span: the least start and greatest end of its ranges
        # (get_pfn_range_for_nid())
        self.spans = {n: (min(r[0] for r in rs if r[2] == n), max(r[1] for r in rs if r[2] == n)) for n in self.nodes}
        self.hard: list[Any] = []
        self.incomplete: list[str] = []
        self._cache: dict[int, Any] = {}  # pfn term id -> (in_ram, range)
        self._ranges: dict[int, StructVal] = {}  # pfn term id -> pfn_range() of it
        # pfn_range() of a pfn in no range: any range (the interface at Layout says why it
        # is left open), but one per pfn, as a function gives. Constants of their own for
        # each pfn term, not an uninterpreted function, so that a query on a layout with
        # zone lines stays pure bit-vector (query.py gives those a faster solver); ``close``
        # makes two of them equal where their pfns are (instances the solver adds only
        # once a model has equal pfns with different ranges)
        self._holes: list[tuple[Any, StructVal]] = []  # (pfn term, its hole's range)
        self._holes_done = 0  # the holes made consistent with every earlier one
        # z3 identifies a constant by its name and sort: every witness and hole gets a
        # number of its own, so two questions never share the element they pick
        self._fresh = 0
        # what the layout does not give stays uninterpreted: without zone lines, the
        # zone limits are left to the axioms
        self._uf_movable = z3.Function("zone_movable_pfn", z3.BitVecSort(32, ctx), z3.BitVecSort(64, ctx))
        self._uf_zlo = z3.Function("arch_zone_lowest_possible_pfn", z3.BitVecSort(32, ctx), z3.BitVecSort(64, ctx))
        self._uf_zhi = z3.Function("arch_zone_highest_possible_pfn", z3.BitVecSort(32, ctx), z3.BitVecSort(64, ctx))

    def _bv(self, v: int, w: int) -> Any:
        return bv_value(v & ((1 << w) - 1), w, self.ctx)

    def _name(self, base: str) -> str:
        self._fresh += 1
        return f"{base}!{self._fresh}"

    @staticmethod
    def _what(origin: str) -> str:
        # the quantified variable a witness stands for, without the file and position of
        # the origin: the query's names stay the same wherever the spec lives
        return origin.split(" at ")[0]

    def _lookup(self, p: Any) -> tuple[Any, StructVal]:
        """(in_ram, range): whether a range holds p, and that range when one does (for a
        pfn in no range, the range the search ends at: read only under in_ram)."""
        key = p.get_id()
        hit = self._cache.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        rs = self.ranges

        # a binary search over the sorted, disjoint ranges, as a tree of Ifs: p can only
        # lie in the last range starting at or below it (the first one when p is below
        # them all), so each leaf tests its own range. The terms are log2(#ranges) deep,
        # where a chain over the ranges would be as deep as there are ranges.
        def build(lo: int, hi: int) -> tuple[Any, Any, Any, Any, Any]:
            if hi - lo == 1:
                s, e, n, m = rs[lo]
                return (
                    conj(ule(self._bv(s, 64), p), ult(p, self._bv(e, 64))),
                    self._bv(s, 64),
                    self._bv(e, 64),
                    self._bv(n, 32),
                    z3.BoolVal(m, self.ctx),
                )
            mid = (lo + hi) // 2
            a = build(lo, mid)
            b = build(mid, hi)
            c = ult(p, self._bv(rs[mid][0], 64))
            return tuple(choose(c, x, y) for x, y in zip(a, b, strict=True))

        if not rs:
            # no memory: every pfn is a hole, and the range is never read
            res = (z3.BoolVal(False, self.ctx),
                   StructVal(MEM_RANGE, (self._bv(0, 64), self._bv(0, 64), self._bv(-1, 32),
                                         z3.BoolVal(False, self.ctx))))
        else:
            inr, s, e, n, m = build(0, len(rs))
            res = (inr, StructVal(MEM_RANGE, (s, e, n, m)))
        self._cache[key] = res
        return res

    def pfn_in_ram(self, p: Any) -> Any:
        return self._lookup(p)[0]

    def pfn_node(self, p: Any) -> Any:
        inr, r = self._lookup(p)
        return choose(inr, r.fields[2], self._bv(-1, 32))

    def pfn_range(self, p: Any) -> StructVal:
        # the range holding p, else (a hole) the open value: never the range the search
        # happens to end at, which would prove claims that hold on no other value
        key = p.get_id()
        hit = self._ranges.get(key)
        if hit is None:
            inr, r = self._lookup(p)
            if z3.is_bv_value(p) and is_true(z3.simplify(inr)):
                hit = r  # a pfn given by number, in a range: nothing is open
            else:
                base = self._name("pfn_range of a hole")
                hole = StructVal(MEM_RANGE, (z3.BitVec(f"{base}.start", 64, self.ctx),
                                             z3.BitVec(f"{base}.end", 64, self.ctx),
                                             z3.BitVec(f"{base}.nid", 32, self.ctx),
                                             z3.Bool(f"{base}.mirror", self.ctx)))
                self._holes.append((p, hole))
                hit = StructVal(MEM_RANGE, tuple(choose(inr, f, g) for f, g in zip(r.fields, hole.fields, strict=True)))
            self._ranges[key] = hit
        return hit

    def note_pfn(self, p: Any) -> None:
        pass

    def hint_pfn(self, p: Any) -> None:
        pass

    def _node_table(self, n: Any, values: dict[int, int], default: int, w: int) -> Any:
        """The value a table of the nodes gives node term n (``default`` for another
        id); a number when n is one, so a claim about node 0 reads a constant."""
        out = self._bv(default, w)
        for nid in sorted(values, reverse=True):
            out = choose(n == self._bv(nid, 32), self._bv(values[nid], w), out)
        return z3.simplify(out) if z3.is_bv_value(n) else out

    def node_start_pfn(self, n: Any) -> Any:
        return self._node_table(n, {k: v[0] for k, v in self.spans.items()}, 0, 64)

    def node_end_pfn(self, n: Any) -> Any:
        return self._node_table(n, {k: v[1] for k, v in self.spans.items()}, 0, 64)

    def zone_movable_pfn(self, n: Any) -> Any:
        # addresses in the layout, pfns here; 0, no ZONE_MOVABLE, for the other nodes
        vals = {nid: addr >> self.page_shift for nid, addr in self.layout.movable}
        return self._node_table(n, vals, 0, 64)

    def _zone(self, z: Any, which: int) -> Any:
        if not self.layout.zones:
            return (self._uf_zlo if which == 0 else self._uf_zhi)(z)
        return self._node_table(z, self._zone_limits(which), 0, 64)

    def _zone_limits(self, which: int) -> dict[int, int]:
        """free_area_init(): consecutive limits from the start of memory; an empty zone
        (or one the log leaves out) sits where the previous one ends; ZONE_MOVABLE has
        none of its own."""
        given = {zi: (s, e) for zi, s, e in self.layout.zones if s < e}
        start = min((s for s, _ in given.values()), default=0) >> self.page_shift
        lo: dict[int, int] = {}
        hi: dict[int, int] = {}
        prev = start
        for zi in (0, 1, 2, 4):
            if zi in given:
                s_, e_ = given[zi]
                lo[zi] = max(-(-s_ >> self.page_shift), prev) if zi else -(-s_ >> self.page_shift)
                hi[zi] = max(e_ >> self.page_shift, lo[zi])
            else:
                lo[zi] = hi[zi] = prev
            prev = hi[zi]
        lo[3] = hi[3] = 0
        return lo if which == 0 else hi

    def arch_zone_lowest(self, z: Any) -> Any:
        return self._zone(z, 0)

    def arch_zone_highest(self, z: Any) -> Any:
        return self._zone(z, 1)

    def mirrored_kernelcore(self) -> Any:
        return z3.BoolVal(bool(self.layout.mirrored_kernelcore), self.ctx)

    def _range_vals(self) -> list[StructVal]:
        return [
            StructVal(MEM_RANGE, (self._bv(s, 64), self._bv(e, 64), self._bv(n, 32), z3.BoolVal(m, self.ctx)))
            for s, e, n, m in self.ranges
        ]

    def forall_ranges(self, pred: Pred) -> Any:
        return conj(*[pred(r) for r in self._range_vals()]) if self.ranges else z3.BoolVal(True, self.ctx)

    def exists_range(self, pred: Pred, origin: str) -> Any:
        return disj(*[pred(r) for r in self._range_vals()]) if self.ranges else z3.BoolVal(False, self.ctx)

    def forall_nodes(self, pred: Pred) -> Any:
        return conj(*[pred(self._bv(n, 32)) for n in self.nodes]) if self.nodes else z3.BoolVal(True, self.ctx)

    def exists_node(self, pred: Pred, origin: str) -> Any:
        return disj(*[pred(self._bv(n, 32)) for n in self.nodes]) if self.nodes else z3.BoolVal(False, self.ctx)

    def witness_node(self, origin: str) -> tuple[Any, Any]:
        n = z3.BitVec(self._name(f"witness_node {self._what(origin)}"), 32, self.ctx)
        is_node = disj(*[n == self._bv(x, 32) for x in self.nodes]) if self.nodes else z3.BoolVal(False, self.ctx)
        return is_node, n

    def witness_range(self, origin: str) -> tuple[Any, StructVal]:
        # an index the solver picks, and the range at that index as a chain of Ifs
        i = z3.BitVec(self._name(f"witness_range {self._what(origin)}"), 32, self.ctx)
        vals = self._range_vals()
        if not vals:
            return z3.BoolVal(False, self.ctx), StructVal(
                MEM_RANGE, (self._bv(0, 64),) * 2 + (self._bv(0, 32), z3.BoolVal(False, self.ctx)))
        fields = []
        for k in range(4):
            out = vals[-1].fields[k]
            for j in range(len(vals) - 2, -1, -1):
                out = choose(i == j, vals[j].fields[k], out)
            fields.append(out)
        return ult(i, len(vals)), StructVal(MEM_RANGE, tuple(fields))

    def forall_pfns(self, pred: Pred) -> Any:
        # the lowering refuses a pfn quantifier on a concrete layout (KHO511) before
        # asking
        raise NotImplementedError

    def first_node(self, cond: Pred, default: Any, origin: str) -> Any:
        # the lowest id wins: the chain is built from the highest node down
        out = default
        for n in reversed(self.nodes):
            nv = self._bv(n, 32)
            out = choose(cond(nv), nv, out)
        return out

    def close(self) -> tuple[list[Any], list[Any]]:
        # every quantifier over a concrete layout is expanded; what is lazy is that equal
        # pfns have the same hole's range, which few models need said
        lazy: list[Any] = []
        while self._holes_done < len(self._holes):
            p, h = self._holes[self._holes_done]
            for q, g in self._holes[:self._holes_done]:
                # two numbers are two different pfns (z3 shares the term of a value)
                if not (z3.is_bv_value(p) and z3.is_bv_value(q)):
                    lazy.append(implies(p == q, conj(*[a == b for a, b in zip(h.fields, g.fields, strict=True)])))
            self._holes_done += 1
        out, self.hard = self.hard, []
        return out, lazy

    def round(self, align_pfns: int, below_pfns: int, node_ids: bool = True) -> Any:
        # the ranges are given; what the model may still choose is pfn_range() of a hole,
        # which the replay reads as (0, 0, NUMA_NO_NODE, false): a counterexample with
        # that value, where there is one, is one the replay confirms. A readability
        # constraint as the others are: solve.py drops it when no counterexample has it
        interp = (self._bv(0, 64), self._bv(0, 64), self._bv(-1, 32), z3.BoolVal(False, self.ctx))
        return conj(z3.BoolVal(True, self.ctx), *[
            conj(*[f == v for f, v in zip(h.fields, interp, strict=True)]) for _, h in self._holes])

    def existing(self, model: z3.ModelRef) -> int:
        return 0  # the ranges are the layout's own: nothing to drop

    def at_most(self, k: int) -> Any:
        return z3.BoolVal(True, self.ctx)

    def extract(self, model: z3.ModelRef) -> ModelLayout:
        return {
            "ranges": list(self.ranges),
            "nodes": list(self.nodes),
            "zone_movable_pfn": {n: model.eval(self.zone_movable_pfn(self._bv(n, 32)), model_completion=True).as_long()
                                 for n in self.nodes},
            "arch_zones": [
                (model.eval(self.arch_zone_lowest(self._bv(z, 32)), model_completion=True).as_long(),
                 model.eval(self.arch_zone_highest(self._bv(z, 32)), model_completion=True).as_long())
                for z in range(5)
            ],
            "mirrored_kernelcore": bool(self.layout.mirrored_kernelcore),
        }


class BoundedLayout(_RangeLayout):
    """Layouts of at most k memory ranges with symbolic bounds, node ids and flags.

    Every question is answered by expanding over the k ranges, so the formulas are
    small and complete for such layouts: a model is a real counterexample. Used to find
    small counterexamples fast; never for proofs (a proof must cover every layout).
    """

    kind: Final = "bounded"

    def __init__(self, ctx: z3.Context, params: Callable[[str, tuple[Any, ...]], Any], k: int = 3) -> None:
        self.ctx = ctx
        self.params = params
        self.k = k
        c = ctx
        self.ranges = [
            WRange(i, z3.BitVec(f"R{i}.start", 64, c), z3.BitVec(f"R{i}.end", 64, c),
                   z3.BitVec(f"R{i}.nid", 32, c), z3.Bool(f"R{i}.mirror", c), z3.Bool(f"R{i}.exists", c),
                   f"range {i}")
            for i in range(k)
        ]
        self.hard: list[Any] = []
        for r in self.ranges:
            self.hard.append(implies(r.exists, ult(r.start, r.end)))
        for a, b in zip(self.ranges, self.ranges[1:], strict=False):
            # in ascending order, used ones first (breaks the symmetry between orders)
            self.hard.append(implies(b.exists, conj(a.exists, ule(a.end, b.start))))
        self.incomplete: list[str] = []
        self.pfn_pool: list[Any] = []
        self._pfn_ids: set[int] = set()
        self._obligations: list[Callable[[Any], Any]] = []
        self._done: dict[int, set[int]] = {}
        self._fresh = 0
        self._movable = z3.Function("zone_movable_pfn", z3.BitVecSort(32, ctx), z3.BitVecSort(64, ctx))
        self._zlo = z3.Function("arch_zone_lowest_possible_pfn", z3.BitVecSort(32, ctx), z3.BitVecSort(64, ctx))
        self._zhi = z3.Function("arch_zone_highest_possible_pfn", z3.BitVecSort(32, ctx), z3.BitVecSort(64, ctx))
        self._mirrored = z3.Bool("mirrored_kernelcore", ctx)
        # pfn quantifiers are instantiated at these too: a fact about pfns that depends on
        # the layout only through its ranges is constant between range boundaries, so the
        # boundaries and their neighbours cover every case
        for r in self.ranges:
            for t in (r.start, r.end, r.start - 1, r.end - 1):
                self.note_pfn(t)

    def _lookup(self, p: Any) -> tuple[Any, StructVal]:
        """(in_ram, range): the ranges are disjoint, so at most one holds p; a pfn in
        none reads (0, 0, NUMA_NO_NODE, false), as the interpreter gives it."""
        self.note_pfn(p)
        hits = [conj(r.exists, r.contains(p)) for r in self.ranges]
        fields: list[Any] = [bv_value(0, 64, self.ctx), bv_value(0, 64, self.ctx),
                             bv_value(0xFFFFFFFF, 32, self.ctx), z3.BoolVal(False, self.ctx)]
        for r, h in reversed(list(zip(self.ranges, hits, strict=True))):
            fields = [choose(h, f, g) for f, g in zip((r.start, r.end, r.nid, r.mirror), fields, strict=True)]
        return disj(*hits), StructVal(MEM_RANGE, tuple(fields))

    def pfn_in_ram(self, p: Any) -> Any:
        return self._lookup(p)[0]

    def pfn_node(self, p: Any) -> Any:
        inr, r = self._lookup(p)
        return choose(inr, r.fields[2], bv_value(0xFFFFFFFF, 32, self.ctx))

    def pfn_range(self, p: Any) -> StructVal:
        return self._lookup(p)[1]

    def node_start_pfn(self, n: Any) -> Any:
        out = bv_value(0, 64, self.ctx)
        for r in reversed(self.ranges):  # the lowest range of the node wins
            out = choose(conj(r.exists, r.nid == n), r.start, out)
        return out

    def node_end_pfn(self, n: Any) -> Any:
        out = bv_value(0, 64, self.ctx)
        for r in self.ranges:  # the highest range of the node wins
            out = choose(conj(r.exists, r.nid == n), r.end, out)
        return out

    # the quantifiers over ranges and nodes are expanded over the k ranges: exact for
    # layouts of at most k ranges, with nothing left to instantiate
    def forall_ranges(self, pred: Pred) -> Any:
        return conj(*[implies(r.exists, pred(r.value())) for r in self.ranges])

    def exists_range(self, pred: Pred, origin: str) -> Any:
        return disj(*[conj(r.exists, pred(r.value())) for r in self.ranges])

    def forall_nodes(self, pred: Pred) -> Any:
        return conj(*[implies(r.exists, pred(r.nid)) for r in self.ranges])

    def exists_node(self, pred: Pred, origin: str) -> Any:
        return disj(*[conj(r.exists, pred(r.nid)) for r in self.ranges])

    def witness_node(self, origin: str) -> tuple[Any, Any]:
        n = z3.BitVec(self._name("node"), 32, self.ctx)
        return disj(*[conj(r.exists, r.nid == n) for r in self.ranges]), n

    def witness_range(self, origin: str) -> tuple[Any, StructVal]:
        # an index the solver picks among the k ranges (8 bits: k is small)
        i = z3.BitVec(self._name("range"), 8, self.ctx)
        fields = list(self.ranges[-1].value().fields)
        for j in range(self.k - 2, -1, -1):
            fields = [choose(i == j, f, g) for f, g in zip(self.ranges[j].value().fields, fields, strict=True)]
        exists = disj(*[conj(i == j, r.exists) for j, r in enumerate(self.ranges)])
        return exists, StructVal(MEM_RANGE, tuple(fields))

    def forall_pfns(self, pred: Pred) -> Any:
        # instantiated lazily on the pool, which starts with every range boundary and
        # its neighbours (__init__); a bounded layout only refutes, and the replay
        # decides the quantifier exactly
        q = z3.Bool(self._name("forall_pfns"), self.ctx)
        self.incomplete.append("a universally quantified pfn assumption")
        self._obligations.append(lambda p: implies(q, pred(p)))
        return q

    def first_node(self, cond: Pred, default: Any, origin: str) -> Any:
        # f is the node of an existing range satisfying cond, and no existing range of a
        # lower node satisfies it
        f = z3.BitVec(self._name("first_node"), 32, self.ctx)
        conds = [(r, cond(r.nid)) for r in self.ranges]
        found = disj(*[conj(r.exists, c) for r, c in conds])
        self.hard.append(implies(found, disj(*[conj(r.exists, r.nid == f, c) for r, c in conds])))
        for r, c in conds:
            self.hard.append(implies(conj(found, r.exists, r.nid < f), negate(c)))
        return choose(found, f, default)

    def close(self) -> tuple[list[Any], list[Any]]:
        lazy: list[Any] = []
        # an instance may note new pfns (its body asks pfn_in_ram of another pfn), which
        # need instances in turn: rounds until one adds nothing
        for _ in range(40):
            changed = False
            for k, ob in enumerate(list(self._obligations)):
                done = self._done.setdefault(k, set())
                for i, p in enumerate(list(self.pfn_pool)):
                    if i not in done:
                        done.add(i)
                        lazy.append(ob(p))
                        changed = True
            if not changed:
                break
        out, self.hard = self.hard, []
        return out, lazy


def sort_of(ty: Type, ctx: z3.Context) -> Any:
    """The z3 sort of a bool or integer type (a struct has none: its fields are terms
    of their own, bv.StructVal)."""
    if isinstance(ty, BoolType):
        return z3.BoolSort(ctx)
    assert isinstance(ty, IntType)
    return z3.BitVecSort(ty.width, ctx)


__all__ = [
    "BOOL", "INT", "LAYOUT_BUILTINS", "ULONG", "BoundedLayout", "ConcreteLayout", "Layout", "LayoutBuiltin",
    "LayoutLimit", "SymbolicLayout", "answer_builtin", "sort_of",
]
