"""A linked Spotify account's tokens between the database (encrypted) and the Spotify client.

One place for the sync and the playlist export alike: both read the stored tokens into a `TokenSet`
and both hand the client an `on_refresh` that stores every newly issued token set at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from core.db.repositories import AccountRepository
from core.sources.spotify_models import TokenSet

if TYPE_CHECKING:
    from core.db.models import LinkedAccount
    from core.services import Services

log = logging.getLogger(__name__)


def stored_tokens(accounts: AccountRepository, account: LinkedAccount) -> TokenSet | None:
    """The account's tokens, decrypted; None when none are stored (the user must link again).

    An unknown expiry counts as "already expired", so the client refreshes before its first call.
    """
    access, refresh = accounts.tokens(account)
    if not access and not refresh:
        return None
    expires = account.token_expires_at
    return TokenSet(access or "", refresh or "", expires.timestamp() if access and expires else 0.0,
                    account.scope or "")


def token_persister(services: Services, account_id: int, *, job: str,
                    identity: str | None = None) -> Callable[[TokenSet], Awaitable[None]]:
    """An `on_refresh` callback that stores a newly issued TokenSet, encrypted, in its own transaction.

    Own transaction because Spotify may already have invalidated the old access token: if the caller's
    work failed afterwards and rolled back, the only working token would be lost with it. With
    `identity` (the Spotify user id the caller read), nothing is stored once the account was unlinked
    or re-linked to another Spotify user meanwhile. `job` only labels the log line.
    """

    async def on_refresh(tokens: TokenSet) -> None:
        async with services.session() as session:
            accounts = AccountRepository(session, services.cipher)
            account = await accounts.by_id(account_id)
            if account is None or (identity is not None and account.external_id != identity):
                return
            accounts.set_tokens(account, access_token=tokens.access_token,
                                refresh_token=tokens.refresh_token or None,
                                expires_at=datetime.fromtimestamp(tokens.expires_at, UTC),
                                scope=tokens.scope or None)
        log.info("spotify tokens refreshed and stored", extra={"account_id": account_id, "job": job})

    return on_refresh
