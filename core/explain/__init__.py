"""Conversational explanations: recommendations, compatibility, playlists, weekly DMs, feedback.

Callers use `build_explainer(settings, cache)` → `GroundedExplainer`; see its module for the flow
and `grounding` for the rule that keeps model answers to the evidence. Never imports Discord.
The names below are the ones callers import from `core.explain`; the rest live in its modules.
"""

from core.explain.factory import build_explainer
from core.explain.grounded import GroundedExplainer
from core.explain.openai_explainer import OpenAIExplainer
from core.explain.template import TemplateExplainer
from core.explain.types import Explainer, Pair, PlaylistBrief, WeeklyBrief

__all__ = [
    "Explainer",
    "GroundedExplainer",
    "OpenAIExplainer",
    "Pair",
    "PlaylistBrief",
    "TemplateExplainer",
    "WeeklyBrief",
    "build_explainer",
]
