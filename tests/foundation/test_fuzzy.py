"""core.fuzzy: suggestions for misspelt names and typo-tolerant autocompletes."""

from __future__ import annotations

from core.db.repositories import CatalogRepository, ListenRepository, UserRepository
from core.db.repositories.listens import PlayRow
from core.db.types import utcnow
from core.fuzzy import FuzzyIndex, did_you_mean, suggest_artist, tag_key
from core.matching import artist_key
from core.services import Services

NAMES = ["Radiohead", "Portishead", "Massive Attack", "Radio Moscow", "The Radio Dept.", "Sigur Rós", "Björk"]


def test_a_misspelt_name_is_suggested_and_nonsense_is_not() -> None:
    index = FuzzyIndex.of(NAMES)
    assert index.suggest("radiohed") == "Radiohead"
    assert index.suggest("RAIDOHEAD") == "Radiohead"
    assert index.suggest("portshead") == "Portishead"
    assert index.suggest("masive atack") == "Massive Attack"
    assert index.suggest("sigur ros") == "Sigur Rós"  # accents never decide
    assert index.suggest("zzzz") is None and index.suggest("") is None
    assert FuzzyIndex.of([]).suggest("radiohead") is None


def test_autocomplete_keeps_prefix_hits_and_corrects_typos() -> None:
    index = FuzzyIndex.of(NAMES)
    assert index.complete("radio", ["Radiohead", "Radio Moscow"]) == ["Radiohead", "Radio Moscow"]
    assert index.complete("raidohead", [])[:1] == ["Radiohead"]
    assert index.complete("ra", []) == []  # too short to guess
    tags = FuzzyIndex.of(["shoegaze", "dream pop", "trip-hop"], key=tag_key)
    assert tags.complete("shoegze", [], key=tag_key) == ["shoegaze"]


def test_did_you_mean_wording() -> None:
    assert did_you_mean("I don't know “radiohed”.", "Radiohead") == "I don't know “radiohed”. Did you mean **Radiohead**?"
    assert did_you_mean("I don't know “zz”.", None) == "I don't know “zz”."


async def test_the_better_known_of_two_equally_close_names_wins(services: Services) -> None:
    async with services.session() as session:
        ids = await CatalogRepository(session).ensure_artists(
            {"name_key": artist_key(n), "name": n} for n in ("Slowdave", "Slowdive"))
        [listener] = (await UserRepository(session).ensure_dataset_users("import", ["d:1"])).values()
        await ListenRepository(session).set_artist_plays([PlayRow(listener, ids[artist_key("Slowdive")], 50, utcnow())])
    # equally close (one letter each); by name "Slowdave" would come first
    assert await suggest_artist(services, "Slowduve") == "Slowdive"
