"""Which changes of a pass go together: a primitive waits for a new probe when an earlier change of the pass
writes what its probe reads, or when it and a waiting primitive touch the same thing (effects keep list order)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from hive_nornir.primitives.base import Primitive
from hive_nornir.primitives.resources import conflict


def waits(primitive: Primitive, written: Collection[str], waiting: Sequence[Primitive],
          writes: frozenset[str] | None = None) -> bool:
    """Whether this primitive's plan may differ once the changes taken so far in the pass (`written`, what they
    write) are applied, or whether applying it now would change what a waiting one sees or undo its effect.
    `writes`: what its plan writes (Plan.writes), when narrower than what the primitive declares."""
    reads = primitive.reads()
    writes = primitive.writes() if writes is None else writes
    if conflict(written, reads):
        return True
    return any(conflict(w.writes(), reads | writes) or conflict(writes, w.reads() | w.writes()) for w in waiting)


def levels(primitives: Sequence[Primitive]) -> list[list[Primitive]]:
    """The applies a cold run makes when every primitive changes: the passes, each a list applied in one exec."""
    out: list[list[Primitive]] = []
    pending = list(primitives)
    while pending:
        taken: list[Primitive] = []
        waiting: list[Primitive] = []
        written: set[str] = set()
        for primitive in pending:
            if waits(primitive, written, waiting):
                waiting.append(primitive)
            else:
                taken.append(primitive)
                written |= primitive.writes()
        out.append(taken)
        pending = waiting
    return out
