"""Conversational explanations: recommendations, compatibility, playlists, weekly DMs, feedback.

Callers use `build_explainer(settings, cache)` → `GroundedExplainer`; see its module for the flow
and `grounding` for the rule that keeps model answers to the evidence. Never imports Discord.
"""

from core.explain.budget import CallBudget, hash_user
from core.explain.factory import build_explainer
from core.explain.feedback import parse_feedback
from core.explain.grounded import GroundedExplainer
from core.explain.openai_explainer import OpenAIExplainer
from core.explain.template import TemplateExplainer
from core.explain.types import (
    Explainer,
    ExplainFailed,
    Explanation,
    FeedbackResult,
    Pair,
    PlaylistBrief,
    Preferences,
    WeeklyBrief,
)

__all__ = [
    "CallBudget",
    "ExplainFailed",
    "Explainer",
    "Explanation",
    "FeedbackResult",
    "GroundedExplainer",
    "OpenAIExplainer",
    "Pair",
    "PlaylistBrief",
    "Preferences",
    "TemplateExplainer",
    "WeeklyBrief",
    "build_explainer",
    "hash_user",
    "parse_feedback",
]
