"""Leases (cross-process locks), single-use OAuth nonces, weekly DM slot claims, model artifacts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import DmDelivery, Lease, ModelArtifact, OAuthNonce, User, UserSettings
from core.db.repositories._dialect import upsert_insert
from core.db.types import utcnow


@dataclass(frozen=True)
class DmCandidate:
    """A user who wants weekly DMs and has not closed them: everything the slot arithmetic needs."""

    user_id: int
    discord_id: int
    display_name: str | None
    weekday: int
    minute: int
    timezone: str
    quiet_start_minute: int | None
    quiet_end_minute: int | None


class SchedulingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- leases -----------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, owner: str, ttl: timedelta) -> bool:
        """Take or renew the named lease; true when `owner` holds it afterwards."""
        now = utcnow()
        await self.session.execute(upsert_insert(self.session, Lease)
                                   .values(name=name, owner=owner, expires_at=now + ttl)
                                   .on_conflict_do_nothing(index_elements=["name"]))
        result = await self.session.execute(
            update(Lease).where(Lease.name == name)
            .where(or_(Lease.owner == owner, Lease.expires_at < now))
            .values(owner=owner, expires_at=now + ttl).execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def release_lease(self, name: str, owner: str) -> None:
        await self.session.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))

    # --- OAuth nonces -----------------------------------------------------------------------------

    async def consume_nonce(self, nonce: str, expires_at: datetime) -> bool:
        """Record a nonce as used; false if it was used before (replay)."""
        await self.session.execute(delete(OAuthNonce).where(OAuthNonce.expires_at < utcnow()))
        result = await self.session.execute(upsert_insert(self.session, OAuthNonce)
                                            .values(nonce=nonce, expires_at=expires_at)
                                            .on_conflict_do_nothing(index_elements=["nonce"]))
        return result.rowcount == 1

    async def release_nonce(self, nonce: str) -> None:
        """Un-use a nonce: the OAuth exchange it guarded failed on the provider's side."""
        await self.session.execute(delete(OAuthNonce).where(OAuthNonce.nonce == nonce))

    # --- weekly DMs -------------------------------------------------------------------------------

    @staticmethod
    def _wants_dms() -> Any:
        """The SQL condition `dm_candidates` selects on: DMs on, not closed (50007), a Discord user."""
        return (UserSettings.dm_enabled.is_(True), UserSettings.dm_closed_at.is_(None), User.discord_id.is_not(None))

    async def claim_dm_slot(self, user_id: int, slot: str, owner: str) -> bool:
        """Claim the (user, slot) delivery; exactly one claimer ever wins, across processes.

        The claim is inserted only while the user still wants DMs (checked in the same statement): a
        run lists its candidates once and then works for minutes, and a /dm off or /forget that lands
        meanwhile must win. False: taken by another run, or no longer wanted (`wants_dms` tells which)."""
        columns = DmDelivery.__table__.c
        wanted = (select(UserSettings.user_id, literal(slot, columns.slot.type), literal(owner, columns.claimed_by.type),
                         literal("claimed", columns.status.type), literal(utcnow(), columns.claimed_at.type))
                  .join(User, User.id == UserSettings.user_id)
                  .where(UserSettings.user_id == user_id, *self._wants_dms()))
        insert = (upsert_insert(self.session, DmDelivery)
                  .from_select(["user_id", "slot", "claimed_by", "status", "claimed_at"], wanted)
                  .on_conflict_do_nothing(index_elements=["user_id", "slot"]))
        return (await self.session.execute(insert)).rowcount == 1

    async def wants_dms(self, user_id: int) -> bool:
        """Whether the user (still exists and) still wants weekly DMs right now."""
        stmt = (select(UserSettings.user_id).join(User, User.id == UserSettings.user_id)
                .where(UserSettings.user_id == user_id, *self._wants_dms()))
        return (await self.session.execute(stmt)).first() is not None

    async def release_dm_slot(self, user_id: int, slot: str, owner: str) -> None:
        """Give back an unsent claim (the user turned DMs off before delivery): were they to turn DMs
        on again while the slot is open, they would get this week's DM after all."""
        await self.session.execute(delete(DmDelivery).where(
            DmDelivery.user_id == user_id, DmDelivery.slot == slot, DmDelivery.claimed_by == owner,
            DmDelivery.status == "claimed"))

    async def finish_dm_slot(self, user_id: int, slot: str, status: str, error: str | None = None) -> None:
        await self.session.execute(update(DmDelivery).where(DmDelivery.user_id == user_id, DmDelivery.slot == slot)
                                   .values(status=status, error=error,
                                           sent_at=utcnow() if status == "sent" else None))

    async def dm_delivery(self, user_id: int, slot: str) -> DmDelivery | None:
        stmt = select(DmDelivery).where(DmDelivery.user_id == user_id, DmDelivery.slot == slot)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def dm_candidates(self) -> list[DmCandidate]:
        """Discord users with weekly DMs on and not closed (50007); the caller decides who is due.

        Due-ness depends on each user's time zone, so it is computed in Python, not in SQL.
        """
        stmt = (select(UserSettings.user_id, User.discord_id, User.display_name, UserSettings.dm_weekday,
                       UserSettings.dm_minute, UserSettings.timezone, UserSettings.quiet_start_minute,
                       UserSettings.quiet_end_minute)
                .join(User, User.id == UserSettings.user_id)
                .where(*self._wants_dms())
                .order_by(UserSettings.user_id))
        return [DmCandidate(*row) for row in (await self.session.execute(stmt)).all()]

    async def claimed_dm_slots(self, pairs: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
        """Which of the (user, slot) pairs already have a delivery row (in any status)."""
        wanted = set(pairs)
        if not wanted:
            return set()
        stmt = select(DmDelivery.user_id, DmDelivery.slot).where(
            DmDelivery.user_id.in_({u for u, _ in wanted}), DmDelivery.slot.in_({s for _, s in wanted}))
        return {(u, s) for u, s in (await self.session.execute(stmt)).all()} & wanted

    # --- model artifacts --------------------------------------------------------------------------

    async def add_artifact(self, *, kind: str, version: str, path: str, metrics: dict[str, Any],
                           n_users: int, n_items: int, granularity: str = "artist", activate: bool = True) -> ModelArtifact:
        if activate:
            await self.session.execute(update(ModelArtifact)
                                       .where(ModelArtifact.kind == kind, ModelArtifact.granularity == granularity)
                                       .values(active=False))
        artifact = ModelArtifact(kind=kind, version=version, path=path, metrics=metrics, n_users=n_users,
                                 n_items=n_items, granularity=granularity, active=activate)
        self.session.add(artifact)
        await self.session.flush()
        return artifact

    async def active_artifact(self, kind: str, granularity: str = "artist") -> ModelArtifact | None:
        stmt = (select(ModelArtifact).where(ModelArtifact.kind == kind, ModelArtifact.granularity == granularity,
                                            ModelArtifact.active.is_(True))
                .order_by(ModelArtifact.trained_at.desc()).limit(1))
        return (await self.session.execute(stmt)).scalar_one_or_none()
