"""What a shown recommendation stores, and how it is read back for "Why?" months later.

A `recommendations_shown` row keeps the recommendation with its evidence as JSON, so the
explanation of a pick is always the one that was true when it was shown, whatever model serves now.
Reading is tolerant: rows written by older versions lack newer fields and still decode.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from core.domain import AotyFacts, Evidence, Kind, Recommendation, Weighted

_AOTY_FIELDS = tuple(f.name for f in fields(AotyFacts))


def _weighted(values: tuple[Weighted, ...]) -> list[dict[str, Any]]:
    return [{"name": w.name, "weight": w.weight} for w in values]


def _weighted_from(data: Any) -> tuple[Weighted, ...]:
    return tuple(Weighted(str(w["name"]), float(w["weight"])) for w in data or ())


def evidence_to_json(rec: Recommendation) -> dict[str, Any]:
    """What a shown row stores: enough to rebuild the Recommendation for "Why?" months later."""
    ev = rec.evidence
    # Spelled out rather than `dataclasses.asdict`: that deep-copies recursively and cost ~1 ms per
    # /recommend (measured under `scripts/bench bot`); the shape is the same.
    evidence = {"items": _weighted(ev.items), "tags": _weighted(ev.tags), "sources": dict(ev.sources),
                "aoty": None if ev.aoty is None else {f: getattr(ev.aoty, f) for f in _AOTY_FIELDS},
                "popularity": ev.popularity, "lastfm_listeners": ev.lastfm_listeners, "note": ev.note,
                "similar_to": _weighted(ev.similar_to)}
    return {"name": rec.name, "artist": rec.artist, "score": rec.score, "url": rec.url,
            "image_url": rec.image_url, "evidence": evidence}


def recommendation_from_json(kind: str, item_id: int, data: dict[str, Any] | None) -> Recommendation:
    """The inverse of `evidence_to_json` (missing fields take their defaults)."""
    data = data or {}
    ev = data.get("evidence") or {}
    aoty = ev.get("aoty")
    evidence = Evidence(
        items=_weighted_from(ev.get("items")), tags=_weighted_from(ev.get("tags")),
        sources={str(k): float(v) for k, v in (ev.get("sources") or {}).items()},
        aoty=AotyFacts(**{**aoty, "genres": tuple(aoty.get("genres") or ())}) if isinstance(aoty, dict) else None,
        popularity=ev.get("popularity"), note=ev.get("note"),
        lastfm_listeners=int(ev["lastfm_listeners"]) if ev.get("lastfm_listeners") is not None else None,
        similar_to=_weighted_from(ev.get("similar_to")))
    return Recommendation(kind=Kind(kind), item_id=item_id, name=str(data.get("name") or "?"),
                          score=float(data.get("score") or 0.0), evidence=evidence, artist=data.get("artist"),
                          image_url=data.get("image_url"), url=data.get("url"))
