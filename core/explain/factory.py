"""Build the explainer callers use from `Settings` and the shared cache (called by build_services).

No API key → no model client at all: the composite is template-only and nothing leaves the process.
A local OpenAI-compatible server (Ollama, vLLM) needs a key too: set any non-empty value together
with OPENAI_BASE_URL. The salt for hashing user ids in logs and budget keys is the deployment's
secret key when set, so hashes cannot be matched across deployments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.explain.budget import CallBudget
from core.explain.grounded import GroundedExplainer
from core.explain.openai_explainer import OpenAIExplainer
from core.explain.template import TemplateExplainer

if TYPE_CHECKING:
    from core.cache import Cache
    from core.config import Settings


def build_explainer(settings: Settings, cache: Cache, *, global_daily_budget: int | None = None,
                    deferred: bool = False) -> GroundedExplainer:
    """The composite explainer for this deployment; remember to `await explainer.aclose()`.

    `deferred`: the model client (when a key is set) is built by `explainer.start()`, not now.
    """
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    salt = ("sonance-explain:" + secret).encode()
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""

    def connect() -> OpenAIExplainer:
        return OpenAIExplainer.create(api_key=key, base_url=settings.openai_base_url, model=settings.openai_model,
                                      timeout_s=settings.explain_timeout_s, salt=salt)

    llm = connect() if key and not deferred else None
    budget = CallBudget(cache, settings.explain_daily_budget, global_per_day=global_daily_budget, salt=salt)
    return GroundedExplainer(llm, TemplateExplainer(), cache, budget, timeout_s=settings.explain_timeout_s, salt=salt,
                             connect=connect if key and deferred else None)
