"""The leader lease and the weekly-DM check come from settings (SONANCE_SCHEDULER_LEASE_S,
SONANCE_WEEKLY_DM_CHECK_S), so a deployment chooses its failover bound; defaults are unchanged."""

from __future__ import annotations

from dataclasses import replace

from core.scheduler import JobSet, SonanceScheduler, job_specs
from core.services import Services


async def _noop() -> None:
    return None


def test_the_lease_comes_from_settings_and_renews_at_a_third(services: Services) -> None:
    default = SonanceScheduler(services, JobSet())
    assert (default.lease_ttl_s, default.renew_every_s) == (30.0, 10.0)  # as before the setting existed
    short = replace(services, settings=services.settings.model_copy(update={"scheduler_lease_s": 6.0}))
    scheduler = SonanceScheduler(short, JobSet())
    assert (scheduler.lease_ttl_s, scheduler.renew_every_s) == (6.0, 2.0)
    # a hanging renewal still steps down before the lease can pass to another process
    assert scheduler.renew_every_s + scheduler._attempt_timeout_s < scheduler.lease_ttl_s


def test_weekly_dm_interval_keeps_the_stored_schedule_by_default() -> None:
    [default] = job_specs(JobSet(weekly_dms=_noop), sync_active_minutes=15)
    assert default.trigger_args == {"minutes": 5} and default.jitter == 10
    [fast] = job_specs(JobSet(weekly_dms=_noop), sync_active_minutes=15, weekly_dm_check_s=2)
    assert fast.trigger_args == {"seconds": 2} and fast.jitter == 0.5
