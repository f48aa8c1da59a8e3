"""Linked Last.fm / Spotify accounts: secrets encrypted on the way in, sync state, sync locks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.crypto import TokenCipher
from core.db.models import LinkedAccount
from core.db.repositories.playlists import release_unfinished_exports
from core.db.types import utcnow
from core.errors import ConfigError

PROVIDERS = ("lastfm", "spotify")


class AccountRepository:
    """All access to `linked_accounts`. Plain tokens exist only in memory, never in a row."""

    def __init__(self, session: AsyncSession, cipher: TokenCipher | None) -> None:
        self.session = session
        self.cipher = cipher

    @classmethod
    def without_cipher(cls, session: AsyncSession) -> AccountRepository:
        """For work that never reads or writes a token (sync bookkeeping, locks, lookups, counts):
        it runs even when no secret key is configured, and any attempt to store a token fails
        loudly with a `ConfigError` instead of writing it in the clear."""
        return cls(session, None)

    def _encrypt(self, value: str | None) -> bytes | None:
        if value is None:
            return None
        if self.cipher is None:
            raise ConfigError("Missing setting: set SONANCE_SECRET_KEY to store account tokens.")
        return self.cipher.encrypt(value)

    async def get(self, user_id: int, provider: str) -> LinkedAccount | None:
        stmt = select(LinkedAccount).where(LinkedAccount.user_id == user_id, LinkedAccount.provider == provider)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_id(self, account_id: int) -> LinkedAccount | None:
        return await self.session.get(LinkedAccount, account_id)

    async def find(self, provider: str, who: str) -> LinkedAccount | None:
        """An account by external id / username (case-insensitive) or by its user's Discord id."""
        from core.db.models import User

        conditions = [func.lower(LinkedAccount.external_id) == who.lower()]
        if who.isdigit():
            conditions.append(LinkedAccount.user_id.in_(select(User.id).where(User.discord_id == int(who))))
        stmt = (select(LinkedAccount).where(LinkedAccount.provider == provider, or_(*conditions))
                .order_by(LinkedAccount.id).limit(1))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def verified_by_other(self, provider: str, external_id: str, user_id: int) -> bool:
        """Whether another user proved ownership of this external account (web auth).

        Why: a public-profile link is a claim anyone can make; once someone verified the account,
        other Discord users must not claim it without proof.
        """
        stmt = select(func.count()).select_from(LinkedAccount).where(
            LinkedAccount.provider == provider, func.lower(LinkedAccount.external_id) == external_id.lower(),
            LinkedAccount.user_id != user_id, LinkedAccount.verified.is_(True))
        return int((await self.session.execute(stmt)).scalar_one()) > 0

    async def unverified_claims(self, provider: str, external_id: str, user_id: int) -> list[tuple[int, int]]:
        """(user id, account id) of other users' unverified links to this external account.

        Matched like `verified_by_other` (case-insensitive), so the claims a verification evicts
        are exactly those that check would have refused had they come after it.
        """
        stmt = (select(LinkedAccount.user_id, LinkedAccount.id)
                .where(LinkedAccount.provider == provider,
                       func.lower(LinkedAccount.external_id) == external_id.lower(),
                       LinkedAccount.user_id != user_id, LinkedAccount.verified.is_(False))
                .order_by(LinkedAccount.id))
        return [(int(u), int(a)) for u, a in (await self.session.execute(stmt)).all()]

    async def has_any(self, user_id: int) -> bool:
        """Whether the user linked any account (no rows loaded, no tokens decrypted)."""
        stmt = select(LinkedAccount.id).where(LinkedAccount.user_id == user_id).limit(1)
        return (await self.session.execute(stmt)).first() is not None

    async def for_user(self, user_id: int) -> list[LinkedAccount]:
        stmt = select(LinkedAccount).where(LinkedAccount.user_id == user_id).order_by(LinkedAccount.provider)
        return list((await self.session.execute(stmt)).scalars())

    async def link(self, user_id: int, provider: str, external_id: str, *, username: str | None = None,
                   verified: bool = False, access_token: str | None = None, refresh_token: str | None = None,
                   expires_at: datetime | None = None, scope: str | None = None) -> LinkedAccount:
        """Link (or re-link) an account. Changing the external account resets the sync state.

        Identities compare case-insensitively, as every lookup here does (Last.fm names are). A
        re-link to another external account starts from nothing the old one earned: `verified` is
        the caller's word alone and the old tokens (session key, refresh token, expiry, scope) are
        dropped, then only the tokens passed now are stored. Why: proof and secrets belong to the
        external account, not to the row; kept, they would let a claim on someone else's public
        profile pass as that profile's proven owner (and block the real owner's own claim).
        A re-link to the same account keeps its proof and its tokens unless new ones are passed.
        """
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}")
        account = await self.get(user_id, provider)
        same_identity = account is not None and account.external_id.lower() == external_id.lower()
        if account is None:
            account = LinkedAccount(user_id=user_id, provider=provider, external_id=external_id)
            self.session.add(account)
        elif not same_identity:
            account.external_id = external_id
            account.sync_cursor = None
            account.history_complete = False
            account.last_listen_at = None
            account.last_failure_reason = None
            account.last_failure_message = None
            # The old account's sync (if any, in another process) is stale from now on: its batches
            # re-check the identity and stop. Free the lock so the new account's import can start.
            account.last_sync_status = None
            account.lock_owner = None
            account.lock_expires_at = None
            self._clear_tokens(account)
            if provider == "spotify":  # a half-made playlist of the old account is not the new one's
                await release_unfinished_exports(self.session, user_id)
        account.username = username or external_id
        account.verified = verified or (same_identity and bool(account.verified))
        if access_token is not None or refresh_token is not None:
            self.set_tokens(account, access_token=access_token, refresh_token=refresh_token,
                            expires_at=expires_at, scope=scope)
        await self.session.flush()
        return account

    @staticmethod
    def _clear_tokens(account: LinkedAccount) -> None:
        """Forget every secret the row holds (tokens and what describes them)."""
        account.access_token_enc = None
        account.refresh_token_enc = None
        account.token_expires_at = None
        account.scope = None

    def set_tokens(self, account: LinkedAccount, *, access_token: str | None, refresh_token: str | None = None,
                   expires_at: datetime | None = None, scope: str | None = None) -> None:
        account.access_token_enc = self._encrypt(access_token)
        if refresh_token is not None:
            account.refresh_token_enc = self._encrypt(refresh_token)
        account.token_expires_at = expires_at
        if scope is not None:
            account.scope = scope

    def tokens(self, account: LinkedAccount) -> tuple[str | None, str | None]:
        """Decrypted (access, refresh) tokens."""
        if account.access_token_enc is None and account.refresh_token_enc is None:
            return None, None
        if self.cipher is None:
            raise ConfigError("Missing setting: set SONANCE_SECRET_KEY to read stored account tokens.")
        access = self.cipher.decrypt(account.access_token_enc) if account.access_token_enc else None
        refresh = self.cipher.decrypt(account.refresh_token_enc) if account.refresh_token_enc else None
        return access, refresh

    async def unlink(self, user_id: int, provider: str, *, external_id: str | None = None,
                     unverified_only: bool = False) -> bool:
        """Remove the user's link: the row and its tokens (listens are the user's, not the row's).

        With `external_id` (case-insensitive) and/or `unverified_only`, only while the row still
        links that account without proof. One conditional DELETE, so an eviction of a claim never
        takes a re-link or a verification another transaction committed since the claim was found.
        """
        stmt = delete(LinkedAccount).where(LinkedAccount.user_id == user_id, LinkedAccount.provider == provider)
        if external_id is not None:
            stmt = stmt.where(func.lower(LinkedAccount.external_id) == external_id.lower())
        if unverified_only:
            stmt = stmt.where(LinkedAccount.verified.is_(False))
        result = await self.session.execute(stmt.execution_options(synchronize_session="fetch"))
        if result.rowcount and provider == "spotify":
            await release_unfinished_exports(self.session, user_id)
        return bool(result.rowcount)

    async def linked_external_ids(self, provider: str) -> dict[int, str]:
        """user id -> external id of every account linked with `provider` (a few rows: Spotify's
        development mode admits five users)."""
        stmt = select(LinkedAccount.user_id, LinkedAccount.external_id).where(LinkedAccount.provider == provider)
        return {int(u): str(e) for u, e in (await self.session.execute(stmt)).all()}

    async def count_with_tokens(self) -> int:
        stmt = select(func.count()).select_from(LinkedAccount).where(
            or_(LinkedAccount.access_token_enc.is_not(None), LinkedAccount.refresh_token_enc.is_not(None)))
        return int((await self.session.execute(stmt)).scalar_one())

    # --- sync state ------------------------------------------------------------------------------

    async def record_sync(self, account_id: int, *, status: str, reason: str | None = None,
                          message: str | None = None, cursor: dict[str, Any] | None = None,
                          history_complete: bool | None = None, last_listen_at: datetime | None = None,
                          external_id: str | None = None) -> None:
        """Store a sync outcome; with `external_id`, only while the row still links that account."""
        values: dict[str, Any] = {"last_sync_status": status, "last_sync_at": utcnow(),
                                  "last_failure_reason": reason, "last_failure_message": message}
        if cursor is not None:
            values["sync_cursor"] = cursor
        if history_complete is not None:
            values["history_complete"] = history_complete
        if last_listen_at is not None:
            values["last_listen_at"] = last_listen_at
        stmt = update(LinkedAccount).where(LinkedAccount.id == account_id)
        if external_id is not None:
            stmt = stmt.where(func.lower(LinkedAccount.external_id) == external_id.lower())
        await self.session.execute(stmt.values(**values))

    async def save_cursor(self, account_id: int, cursor: dict[str, Any]) -> None:
        await self.session.execute(update(LinkedAccount).where(LinkedAccount.id == account_id)
                                   .values(sync_cursor=cursor))

    async def try_lock(self, account_id: int, owner: str, ttl: timedelta, *,
                       external_id: str | None = None) -> bool:
        """Take the account's sync lock if free or expired: one sync per account, across processes.

        A single conditional UPDATE is atomic on both engines, so two processes racing for the same
        account cannot both see a row count of one. With `external_id`, the lock is only taken while
        the row still links that external account: an import keyed by the identity it started with
        can never write into the account after a re-link changed it. The UPDATE also holds the row
        lock (PostgreSQL) / write lock (SQLite) for the rest of the caller's transaction, so a re-link
        waits for the batch being written, and the batch re-checks the identity the re-link left.
        """
        now = utcnow()
        stmt = (update(LinkedAccount)
                .where(LinkedAccount.id == account_id)
                .where(or_(LinkedAccount.lock_owner.is_(None), LinkedAccount.lock_expires_at < now,
                           LinkedAccount.lock_owner == owner)))
        if external_id is not None:
            stmt = stmt.where(func.lower(LinkedAccount.external_id) == external_id.lower())
        result = await self.session.execute(stmt.values(lock_owner=owner, lock_expires_at=now + ttl)
                                            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def links(self, account_id: int, external_id: str) -> bool:
        """Whether the account row still exists and still links `external_id` (case-insensitive)."""
        stmt = select(LinkedAccount.id).where(LinkedAccount.id == account_id,
                                              func.lower(LinkedAccount.external_id) == external_id.lower())
        return (await self.session.execute(stmt)).first() is not None

    async def unlock(self, account_id: int, owner: str, *, external_id: str | None = None) -> None:
        """Release the lock; with `external_id`, only while the row still links that account (a stale
        run must not release the lock the new account's import took under the same owner)."""
        stmt = update(LinkedAccount).where(and_(LinkedAccount.id == account_id, LinkedAccount.lock_owner == owner))
        if external_id is not None:
            stmt = stmt.where(func.lower(LinkedAccount.external_id) == external_id.lower())
        await self.session.execute(stmt.values(lock_owner=None, lock_expires_at=None)
                                   .execution_options(synchronize_session=False))

    async def due_for_sync(self, provider: str, active_before: datetime, dormant_before: datetime,
                           active_since: datetime, limit: int = 500) -> list[LinkedAccount]:
        """Accounts whose last sync is older than their cadence: active listeners often, dormant daily."""
        active = and_(LinkedAccount.last_listen_at >= active_since,
                      or_(LinkedAccount.last_sync_at.is_(None), LinkedAccount.last_sync_at < active_before))
        dormant = or_(LinkedAccount.last_sync_at.is_(None), LinkedAccount.last_sync_at < dormant_before)
        stmt = (select(LinkedAccount).where(LinkedAccount.provider == provider).where(or_(active, dormant))
                .order_by(LinkedAccount.last_sync_at.nulls_first(), LinkedAccount.id).limit(limit))
        return list((await self.session.execute(stmt)).scalars())
