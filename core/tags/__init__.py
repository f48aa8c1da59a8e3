"""Tags in words a listener would use: one spelling per tag, and only genres, moods, scenes, eras
and places shown to people.

Last.fm tags are free text typed by listeners, so the same genre arrives as "synth pop",
"synthpop" and "synth-pop", and next to it sit personal notes ("seen live", "albums i own") and
judgements ("awesome", "sexy"). The recommender may keep every tag (a stray tag still carries
signal); what is *shown* — embeds, explanations and the facts an LLM may cite, playlist names,
compatibility breakdowns — goes through `display_tags`.
"""

from core.tags.vocabulary import (
    TagClass,
    canonical_tag,
    classify,
    display_tags,
    is_listener_tag,
    tag_key,
)

__all__ = ["TagClass", "canonical_tag", "classify", "display_tags", "is_listener_tag", "tag_key"]
