"""Which lab resources a stage owns: a random stage id recorded in state.json and put in every label we create.

The site name and stage only make the names; two checkouts of one site share those names, so ownership is the
stage id (``hive_nornir.stage_id``) plus docker ids that `--adopt` recorded. The owner label
(``hive_nornir.owner``: the absolute context dir) is there to name the other owner in a refusal.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hive_nornir.providers.common import NotOurs

LABEL_STAGE_ID = "hive_nornir.stage_id"
LABEL_OWNER = "hive_nornir.owner"
STATE_ID = "stage_id"
STATE_ADOPTED = "adopted"


def new_stage_id() -> str:
    """128 random bits: another checkout of the same site never draws the same id."""
    return secrets.token_hex(16)


def stage_id_of(state: Mapping[str, Any]) -> str | None:
    """The id this stage recorded at its first build (None: never built by an id-aware hive_nornir)."""
    value = state.get(STATE_ID)
    return str(value) if isinstance(value, str) and value else None


def adopted_of(state: Mapping[str, Any]) -> set[str]:
    """Docker ids of containers and networks taken over with --adopt (their labels still name the old owner)."""
    value = state.get(STATE_ADOPTED) or []
    return {str(v) for v in value} if isinstance(value, list) else set()


def owner_labels(stage_id: str, context_dir: Path) -> dict[str, str]:
    """Labels every container and network of the stage carries."""
    return {LABEL_STAGE_ID: stage_id, LABEL_OWNER: str(Path(context_dir).resolve())}


@dataclass(frozen=True)
class Resource:
    """A docker object found under one of the stage's names."""

    kind: str          # "container" or "network"
    name: str
    docker_id: str
    labels: Mapping[str, str]


def _other_claim(owner: str, stage_id: str, context_dir: Path) -> bool:
    """True when the owner label names another live context dir that records the same id (a copied .hive/)."""
    if not owner or Path(owner) == Path(context_dir).resolve():
        return False
    try:
        other = json.loads((Path(owner) / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # moved away (or gone): the id travelled with .hive/, so the stage is still ours
    return isinstance(other, dict) and other.get(STATE_ID) == stage_id


def why_not_ours(res: Resource, stage_id: str | None, adopted: Iterable[str], context_dir: Path) -> str | None:
    """None when the resource is ours, else a sentence naming its owner."""
    if res.docker_id in set(adopted):
        return None
    their_id = res.labels.get(LABEL_STAGE_ID)
    owner = res.labels.get(LABEL_OWNER, "")
    if not their_id:
        return (f"{res.kind} {res.name} has no {LABEL_STAGE_ID} label: an older hive_nornir made it, and its "
                f"owner is unknown (not assumed to be this checkout)")
    if their_id != stage_id:
        return f"{res.kind} {res.name} belongs to {owner or 'an unnamed owner'} (stage id {their_id[:12]})"
    if _other_claim(owner, stage_id, context_dir):
        return (f"{res.kind} {res.name} was made by {owner}, whose state.json records this stage's id too "
                f"(a copy of its .hive/?)")
    return None


def refuse_foreign(found: Iterable[Resource], stage_id: str | None, adopted: Iterable[str], context_dir: Path,
                   action: str, adopt: bool) -> list[Resource]:
    """The resources that are not ours; raise NotOurs naming them unless `adopt` takes them over."""
    adopted = set(adopted)
    reasons = [(res, why) for res in found if (why := why_not_ours(res, stage_id, adopted, context_dir))]
    if reasons and not adopt:
        here = Path(context_dir).resolve()
        lines = "\n".join(f"  {why}" for _, why in reasons)
        raise NotOurs(
            f"refusing to {action}: this checkout ({here}, stage id "
            f"{(stage_id or 'not yet recorded')[:12]}) did not create\n{lines}\n"
            f"run build-infra from their checkout (or its -D there), or take them over here with "
            f"`build-infra --adopt`")
    return [res for res, _ in reasons]
