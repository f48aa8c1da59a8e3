"""Accounts & privacy: linking Last.fm / Spotify, the OAuth callbacks, privacy choices, forget/export.

One `AccountService` per process (`services.accounts`), shared by the
Discord cog and the web server, because it owns state that must exist once: the OAuth state signer
and the background first-import tasks (kept referenced here so they are not garbage-collected
mid-import, and cancelled when the account is unlinked/forgotten or the process shuts down).

Linking policy:
- `/link lastfm <name>` is a *claim* on a public profile (`verified=False`): enough to read public
  scrobbles. The reply offers Last.fm web authentication; the callback proves ownership, stores the
  session key encrypted and sets `verified=True`. A claim on a profile someone else verified is
  refused; a verification removes other members' earlier claims on that profile as /unlink would.
  A re-link to another profile never keeps the old one's proof or session key.
- `/link spotify` only exists through OAuth (Spotify has no public listening data).
- An OAuth callback never links by itself: it shows a confirmation page naming the provider account
  AND the Discord user the link was made for; only the POST from that page links. The `state` says
  who ran /link, not who opened the URL, so a forwarded link must be visible to whoever opens it.
- Links of one member serialise across processes (a database lease per member and provider), and
  links to one external account by any members too (a lease per provider account). A
  re-link to another external account first stops the account's running import (in this process;
  an import elsewhere stops at its next write, because syncs are keyed by the identity they started
  with, see core/sync/engine.py).
- Unlinking removes the account row and its tokens but keeps imported listens: they are the user's
  history, not the account's; `/forget` removes everything.

Nothing here imports discord: results are plain dataclasses the bot renders.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from core.asker import Asker
from core.config import Settings
from core.db.models import LinkedAccount
from core.db.repositories import (
    AccountRepository,
    ListenRepository,
    PersonalDataRepository,
    SchedulingRepository,
    UserRepository,
)
from core.db.types import utcnow
from core.errors import ConfigError, InvalidInput, SonanceError, SourceUnavailable
from core.services import Services
from core.sources.oauth_state import OAuthStateError, OAuthStateSigner
from core.sync.engine import USER_DERIVED_NAMESPACES, SyncReport, default_owner

if TYPE_CHECKING:
    from core.sources.lastfm import LastfmClient
    from core.sources.spotify import SpotifyClient

log = logging.getLogger(__name__)

Provider = Literal["lastfm", "spotify"]
Visibility = Literal["public", "guild", "private"]
Scope = Literal["guild", "everywhere"]

LASTFM_CALLBACK_PATH = "/callback/lastfm"
SPOTIFY_CALLBACK_PATH = "/callback/spotify"
LINK_CONFIRM_PATH = "/link/confirm"
#: How long the confirmation page stays usable once the provider sent the browser back.
CONFIRM_TTL_S = 10 * 60
#: How long a link waits for another link of the same member (a second tab, another process).
LINK_WAIT_S = 30.0
LINK_LEASE_TTL = timedelta(minutes=2)
#: Cache namespaces this service itself writes (none today); /forget clears these too.
ACCOUNT_NAMESPACES: tuple[str, ...] = ()
#: How long an OAuth link stays usable: long enough to log in, short enough that a leaked one is dead.
STATE_TTL_S = 15 * 60

#: Stored failure reason codes -> what to tell the user (plain words, no jargon).
REASON_TEXT: dict[str, str] = {
    "lastfm_private": "Your Last.fm profile hides its recent listening. In Last.fm's privacy settings, untick "
                      "'Hide recent listening information', and Sonance will catch up on its next sync.",
    "lastfm_user_not_found": "Last.fm says this user no longer exists (renamed or deleted?). "
                             "Link your current username with /link lastfm.",
    "lastfm_unavailable": "Last.fm was unavailable during the last sync. Nothing is lost; Sonance will "
                          "try again automatically.",
    "lastfm_session_revoked": "Sonance's access to your Last.fm account was revoked. Use /link lastfm and "
                              "verify again if you want a verified link.",
    "lastfm_token_invalid": "The Last.fm authorisation was not approved or expired. Run /link lastfm again.",
    "spotify_token_revoked": "Sonance can no longer read your Spotify account (access was revoked or "
                             "expired). Run /link spotify again.",
    "spotify_forbidden": "Spotify refused access: this bot's Spotify app only serves a few approved users.",
    "internal_error": "The last sync hit a problem on Sonance's side; it will be retried.",
}

SPOTIFY_NOT_CONFIGURED = "Spotify linking isn't enabled on this bot; Last.fm works without it."
SPOTIFY_FULL = ("Spotify linking is full: this bot's Spotify app is in Spotify's development mode, which "
                "allows only {limit} users, and all {limit} places are taken. Spotify is optional: "
                "/link lastfm gives Sonance everything it needs.")
LASTFM_NOT_CONFIGURED = "Last.fm isn't configured on this bot (the owner needs to set LASTFM_API_KEY)."


def reason_text(reason: str | None, stored_message: str | None = None) -> str | None:
    """Friendly text for a stored failure reason; falls back to the stored message."""
    if reason is None:
        return None
    return REASON_TEXT.get(reason) or stored_message or "The last sync failed; it will be retried."


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class LastfmLinkResult:
    username: str
    playcount: int
    import_started: bool
    verify_url: str | None  # None when web auth is unavailable (no secret key / no API secret)
    already_linked: bool = False


@dataclass(frozen=True)
class OAuthLinked:
    """What the callback page tells the user."""

    provider: Provider
    username: str
    import_started: bool = False


@dataclass(frozen=True)
class PendingLink:
    """A provider account back from OAuth, waiting for the confirmation POST.

    `token` is the form's single-use confirmation token: the provider identity and its tokens
    encrypted with the app's key (so nothing is stored before the member confirms), bound to the
    state's nonce. Only the browser that completed the provider's consent ever sees it.
    """

    provider: Provider
    username: str  # the provider account's name, shown on the page
    discord_id: int  # who ran /link (from the signed state)
    discord_name: str | None  # their Discord display name when known
    token: str


@dataclass(frozen=True)
class UnlinkResult:
    provider: Provider
    removed: bool
    username: str | None
    listens_kept: int

    @classmethod
    def nothing_linked(cls, provider: Provider) -> UnlinkResult:
        """The answer for someone Sonance stores nothing about (`AskerDirectory.known` found no one)."""
        return cls(provider, False, None, 0)


@dataclass(frozen=True)
class ImportProgress:
    running: bool
    fetched: int | None = None  # plays read in this run (in-process only)
    total: int | None = None  # plays in this run's window (in-process only)
    reached: datetime | None = None  # newest play imported so far (from the stored cursor)


@dataclass(frozen=True)
class AccountView:
    provider: Provider
    username: str
    verified: bool
    last_sync_at: datetime | None
    status: str | None  # ok | running | error | None (never synced)
    problem: str | None  # friendly text when the last sync failed
    reason: str | None
    history_complete: bool
    progress: ImportProgress | None


@dataclass(frozen=True)
class AccountOverview:
    accounts: list[AccountView]
    listens: int
    artists: int
    privacy_level: str
    hide_username: bool
    visible_here: bool | None  # None outside a guild


@dataclass(frozen=True)
class PrivacyResult:
    privacy_level: str
    hide_username: bool
    guild_visible: bool | None  # the per-guild choice in this guild (None: follows the global level)
    visible_here: bool | None  # the effect in this guild (None outside a guild)
    cleared_overrides: int = 0
    changed: bool = True


@dataclass(frozen=True)
class ForgetResult:
    rows: dict[str, int]
    cache_keys: int

    @classmethod
    def nothing_stored(cls) -> ForgetResult:
        """The answer for someone Sonance stores nothing about."""
        return cls({}, 0)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass(frozen=True)
class ExportResult:
    filename: str
    data: bytes
    tables: dict[str, int] = field(default_factory=dict)  # rows per table

    @property
    def empty(self) -> bool:
        return not self.tables

    @classmethod
    def nothing_stored(cls) -> ExportResult:
        """The answer for someone Sonance stores nothing about (no file is sent)."""
        return cls("", b"")


# ------------------------------------------------------------------------------ nonce store


class DatabaseNonceStore:
    """`NonceStore` on `oauth_nonces`: a unique-key insert, so single use holds across processes."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def consume(self, nonce: str, ttl: float) -> bool:
        async with self.services.session() as session:
            return await SchedulingRepository(session).consume_nonce(nonce, utcnow() + timedelta(seconds=ttl))

    async def release(self, nonce: str) -> None:
        async with self.services.session() as session:
            await SchedulingRepository(session).release_nonce(nonce)


# ---------------------------------------------------------------------------------- service


class AccountService:
    """The engine side of /link, /unlink, /account, /privacy, /forget, /export and OAuth callbacks."""

    def __init__(self, services: Services, *, state_ttl_s: float = STATE_TTL_S) -> None:
        self.services = services
        self._state_ttl_s = state_ttl_s
        self._signer: OAuthStateSigner | None = None
        self._imports: dict[int, asyncio.Task[SyncReport]] = {}  # account id -> running first import
        self._progress: dict[int, tuple[int, int]] = {}  # account id -> (fetched, total) this run

    # --- plumbing -------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def signer(self) -> OAuthStateSigner:
        """The state signer; raises ConfigError when no secret key is configured."""
        if self._signer is None:
            key = self.settings.secret_key
            if key is None or not key.get_secret_value():
                raise ConfigError("Account verification isn't set up on this bot (the owner needs to set "
                                  "SONANCE_SECRET_KEY).")
            self._signer = OAuthStateSigner(key.get_secret_value(), DatabaseNonceStore(self.services),
                                            ttl_s=self._state_ttl_s)
        return self._signer

    def _accounts(self, session: Any) -> AccountRepository:
        return AccountRepository(session, self.services.cipher)

    def _lastfm(self) -> LastfmClient:
        """The Last.fm client, or the `ConfigError` that names the setting the owner is missing."""
        if self.services.lastfm is None:
            raise ConfigError(LASTFM_NOT_CONFIGURED)
        return self.services.lastfm

    def _spotify(self) -> SpotifyClient:
        """The Spotify client, or the `ConfigError` that says Spotify linking is off on this bot."""
        if self.services.spotify is None:
            raise ConfigError(SPOTIFY_NOT_CONFIGURED)
        return self.services.spotify

    def lastfm_callback_url(self, state: str) -> str:
        return f"{self.settings.public_base_url.rstrip('/')}{LASTFM_CALLBACK_PATH}?state={state}"

    def start_import(self, account_id: int) -> bool:
        """Start the account's Last.fm import in the background unless one runs in this process.

        Why a task here and not in the cog: the import outlives the interaction (minutes for a big
        history) and must be cancellable by /unlink and /forget; the sync engine's lock keeps other
        processes (the scheduler) from running the same account at once.
        """
        if self.services.lastfm is None:
            return False
        running = self._imports.get(account_id)
        if running is not None and not running.done():
            return False
        sync = self.services.lastfm_sync

        def progress(page: Any) -> None:
            fetched, _ = self._progress.get(account_id, (0, 0))
            self._progress[account_id] = (fetched + len(page.rows), page.total_rows)

        self._progress[account_id] = (0, 0)
        task = asyncio.create_task(sync.sync_account(account_id, progress), name=f"lastfm-import-{account_id}")
        self._imports[account_id] = task
        task.add_done_callback(lambda t: self._import_done(account_id, t))
        return True

    def _import_done(self, account_id: int, task: asyncio.Task[SyncReport]) -> None:
        if self._imports.get(account_id) is task:
            del self._imports[account_id]
            self._progress.pop(account_id, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background import crashed", exc_info=exc, extra={"account_id": account_id})
        else:
            report = task.result()
            log.info("first import finished: %s", report.status,
                     extra={"account_id": account_id, "inserted": report.inserted})

    async def _cancel_import(self, account_id: int) -> None:
        task = self._imports.pop(account_id, None)
        self._progress.pop(account_id, None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def wait_imports(self) -> None:
        """Wait for running imports (tests, graceful shutdown)."""
        if self._imports:
            await asyncio.gather(*self._imports.values(), return_exceptions=True)

    async def aclose(self) -> None:
        """Called by `Services.close`: stop imports before the HTTP session and engine go away."""
        for account_id in list(self._imports):
            await self._cancel_import(account_id)

    # --- Last.fm --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _linking(self, user_id: int, provider: str) -> AsyncIterator[None]:
        """Hold the member's link lease for `provider`: concurrent links (eight callbacks at once, in
        any process) run one after the other, each seeing the account the previous one left."""
        async with self._lease(f"link:{provider}:{user_id}",
                               "Another link of your account is still in progress. Please try again in a minute."):
            yield

    @contextlib.asynccontextmanager
    async def _identity(self, provider: str, external_id: str) -> AsyncIterator[None]:
        """Hold the lease of one external account: every link to it, by any member, takes turns.

        Why: a claim (`verified=False`) and a verification of the same profile by two members hold
        different member leases, so without this they could interleave: the claim checks
        `verified_by_other` (nobody yet), the verification evicts the claims it sees (none yet), then
        both commit and the claim outlives the verification. Under this lease each one's check or
        eviction and its write commit before the other starts, so either order ends the same way:
        the claim is refused, or it is evicted. Always taken after the member lease and never two at
        once, so no two links can wait on each other. The name is a hash: the leases table holds no
        Last.fm or Spotify names.
        """
        digest = hashlib.sha256(f"{provider}:{external_id.lower()}".encode()).hexdigest()[:40]
        async with self._lease(f"link-identity:{digest}",
                               "Someone else is linking this account right now. Please try again in a minute."):
            yield

    @contextlib.asynccontextmanager
    async def _lease(self, name: str, busy_message: str) -> AsyncIterator[None]:
        """Hold the named database lease (waiting up to LINK_WAIT_S), across processes."""
        owner = f"{default_owner()}:{secrets.token_hex(4)}"
        deadline = time.monotonic() + LINK_WAIT_S
        while True:
            async with self.services.session() as session:
                if await SchedulingRepository(session).acquire_lease(name, owner, LINK_LEASE_TTL):
                    break
            if time.monotonic() > deadline:
                raise SonanceError(busy_message, detail=f"link lease {name} busy")
            await asyncio.sleep(0.05)
        try:
            yield
        finally:
            async with self.services.session() as session:
                await SchedulingRepository(session).release_lease(name, owner)

    async def _evict_claims(self, accounts: AccountRepository, provider: str, external_id: str,
                            owner_user_id: int) -> list[int]:
        """Unlink other members' unverified claims on an account `owner_user_id` just verified.

        Why: the README's rule "a claim on a profile someone else verified is refused" must also
        hold for claims made before the verification, or they keep importing the owner's history
        into the claimant's. Runs in the verified link's transaction, under its identity lease, and
        removes exactly what /unlink removes (`AccountRepository.unlink`: the row and its tokens;
        the listens already imported stay, as they do on /unlink). The caller stops the claims'
        imports in this process (`_cancel_import`, as /unlink does); one elsewhere stops at its next
        write, as the row it is keyed by is gone. Returns the evicted account ids.
        """
        evicted: list[int] = []
        for user_id, account_id in await accounts.unverified_claims(provider, external_id, owner_user_id):
            if await accounts.unlink(user_id, provider, external_id=external_id, unverified_only=True):
                evicted.append(account_id)
                log.info("removed a %s link: another member verified that account", provider,
                         extra={"user_id": user_id, "account_id": account_id})
        return evicted

    async def _relink_lastfm(self, user_id: int, name: str, *, verified: bool,
                             session_key: str | None = None) -> tuple[int, bool, bool]:
        """Change the member's Last.fm link and start its import: (account id, same account, started).

        Every Last.fm link goes through here, under the member's link lease and then the Last.fm
        user's identity lease (`_identity`). A running import of another Last.fm user is cancelled
        AND awaited before the row changes: it must not write one more batch into the account once
        it names someone else. A verified link evicts other members' unverified claims on the same
        Last.fm user in its own transaction (`_evict_claims`), their imports stopped first.
        """
        async with self._linking(user_id, "lastfm"), self._identity("lastfm", name):
            async with self.services.session() as session:
                accounts = self._accounts(session)
                if not verified and await accounts.verified_by_other("lastfm", name, user_id):
                    raise InvalidInput(f"The Last.fm account {name!r} is already linked and verified by another "
                                       "Discord user. If it is yours, use the 'Verify with Last.fm' button.")
                existing = await accounts.get(user_id, "lastfm")
                same = existing is not None and existing.external_id.lower() == name.lower()
                existing_id = existing.id if existing is not None else None
                claims = await accounts.unverified_claims("lastfm", name, user_id) if verified else []
            if existing_id is not None and not same:
                await self._cancel_import(existing_id)
            for _, claim_id in claims:
                await self._cancel_import(claim_id)
            async with self.services.session() as session:
                accounts = self._accounts(session)
                evicted = await self._evict_claims(accounts, "lastfm", name, user_id) if verified else []
                account = await accounts.link(user_id, "lastfm", name, username=name,
                                              verified=verified, access_token=session_key)
                account_id, complete = account.id, account.history_complete
                running_elsewhere = account.last_sync_status == "running" and account.lock_owner is not None \
                    and account.lock_expires_at is not None and _aware(account.lock_expires_at) > utcnow()
            for claim_id in evicted:  # found only now (normally none: new claims wait for the lease)
                await self._cancel_import(claim_id)
            started = False if (complete or running_elsewhere) else self.start_import(account_id)
            return account_id, same, started

    async def link_lastfm(self, asker: Asker, username: str) -> LastfmLinkResult:
        """Validate the profile, link it unverified and start the first import."""
        client = self._lastfm()
        name = username.strip().removeprefix("@")
        if not name or len(name) > 64 or any(c.isspace() for c in name):
            raise InvalidInput("That doesn't look like a Last.fm username (no spaces, at most 64 characters).")
        info = await client.user_info(name)  # unknown -> AccountProblem("lastfm_user_not_found")
        await client.recent_tracks(info.name, limit=1)  # private -> AccountProblem("lastfm_private")
        _, same, started = await self._relink_lastfm(asker.user_id, info.name, verified=False)
        return LastfmLinkResult(username=info.name, playcount=info.playcount, import_started=started,
                                verify_url=self.lastfm_verify_url(asker), already_linked=same)

    def lastfm_verify_url(self, asker: Asker) -> str | None:
        """Last.fm's web-auth URL with a signed, single-use state; None when verification is off."""
        client = self.services.lastfm
        if client is None or self.settings.lastfm_api_secret is None:
            return None
        try:
            state = self.signer().issue(asker.discord_id, "lastfm")
        except ConfigError:
            return None
        return client.auth_url(self.lastfm_callback_url(state))

    # --- OAuth callbacks: exchange, then confirm ----------------------------------------------------

    @contextlib.asynccontextmanager
    async def _claimed(self, state: str, purpose: str) -> AsyncIterator[tuple[int, str]]:
        """Claim the state for one token exchange; give it back if the exchange fails on the
        provider's side (5xx, timeout, offline) or ours, so the same link works on a retry. A refusal
        (bad code, unapproved token, a dev-mode allow-list) keeps it used."""
        signer = self.signer()
        discord_id, nonce = await signer.claim(state, purpose)
        try:
            yield discord_id, nonce
        except BaseException as exc:
            if isinstance(exc, SourceUnavailable) or not isinstance(exc, SonanceError):
                try:
                    await signer.release(nonce)
                except Exception:  # the database is down too: the state stays used, the page says why
                    log.warning("could not give back an OAuth state after a failed exchange", exc_info=True)
            raise

    def _seal(self, payload: dict[str, Any]) -> str:
        if self.services.cipher is None:
            raise ConfigError("Account verification isn't set up on this bot (the owner needs to set "
                              "SONANCE_SECRET_KEY).")
        payload["e"] = int(time.time() + CONFIRM_TTL_S)
        return self.services.cipher.encrypt(json.dumps(payload, separators=(",", ":"))).decode("ascii")

    def _unseal(self, token: str) -> dict[str, Any]:
        if self.services.cipher is None or not token or not token.isascii() or len(token) > 8192:
            raise OAuthStateError(detail="bad confirmation token")
        try:
            payload = json.loads(self.services.cipher.decrypt(token.encode("ascii")))
            expiry = float(payload["e"])
        except (ConfigError, ValueError, KeyError, TypeError):
            raise OAuthStateError(detail="bad confirmation token") from None
        if expiry < time.time():
            raise OAuthStateError(detail="confirmation expired")
        return dict(payload)

    async def _pending(self, provider: Provider, username: str, discord_id: int, payload: dict[str, Any],
                       ) -> PendingLink:
        async with self.services.session() as session:
            user = await UserRepository(session).by_discord_id(discord_id)
            discord_name = user.display_name if user is not None else None
        payload.update({"p": provider, "u": discord_id, "name": username})
        return PendingLink(provider, username, discord_id, discord_name, self._seal(payload))

    async def begin_lastfm(self, token: str, state: str) -> PendingLink:
        """The web callback: verify the state, exchange the token for a session, and ask to confirm.

        The exchange happens now (Last.fm tokens live one hour and are single-use) so the page can
        name the Last.fm user; nothing is stored until the member confirms.
        """
        client = self._lastfm()
        async with self._claimed(state, "lastfm") as (discord_id, nonce):
            if not token:
                raise InvalidInput("Last.fm did not send an authorisation token. Please run /link lastfm again.")
            session_info = await client.get_session(token)
        return await self._pending("lastfm", session_info.name, discord_id,
                                   {"n": nonce, "x": session_info.name, "a": session_info.key})

    async def check_spotify_room(self, asker: Asker) -> None:
        """Refuse plainly, before the OAuth round trip, when Spotify's development-mode user limit
        (SPOTIFY_USER_LIMIT) is reached; a member already linked may always link again."""
        limit = self.services.settings.spotify_user_limit
        if not limit or self.services.spotify is None:
            return
        async with self.services.session() as session:
            linked = await self._accounts(session).linked_external_ids("spotify")
        if len(linked) >= limit and asker.user_id not in linked:
            raise SonanceError(SPOTIFY_FULL.format(limit=limit))

    def spotify_authorize_url(self, asker: Asker) -> str:
        spotify = self._spotify()
        return spotify.auth.authorize_url(self.signer().issue(asker.discord_id, "spotify"))

    async def begin_spotify(self, code: str, state: str) -> PendingLink:
        """The web callback: verify the state, exchange the code, learn the Spotify id, ask to confirm."""
        spotify = self._spotify()
        async with self._claimed(state, "spotify") as (discord_id, nonce):
            if not code:
                raise InvalidInput("Spotify did not send an authorisation code. Please run /link spotify again.")
            tokens = await spotify.auth.exchange_code(code)
            api = spotify.for_user(tokens)
            me = await api.me()  # a dev-mode app's allow-list refusal is AccountProblem("spotify_forbidden")
            tokens = api.tokens  # a refresh may have happened during /me
        name = str(me.get("display_name") or me["id"])
        return await self._pending("spotify", name, discord_id, {
            "n": nonce, "x": str(me["id"]), "a": tokens.access_token, "r": tokens.refresh_token or None,
            "t": tokens.expires_at, "s": tokens.scope})

    async def confirm_link(self, token: str) -> OAuthLinked:
        """The confirmation POST: link the account the page named, once."""
        payload = self._unseal(token)
        discord_id, name = int(payload["u"]), str(payload["name"])
        ttl = max(1.0, float(payload["e"]) - time.time())
        store, once = DatabaseNonceStore(self.services), f"c:{payload['n']}"
        if not await store.consume(once, ttl):
            raise OAuthStateError(detail="confirmation already used")
        try:
            return await self._link_confirmed(payload, discord_id, name)
        except BaseException:  # nothing was linked: pressing the button again must work
            with contextlib.suppress(Exception):
                await store.release(once)
            raise

    async def _link_confirmed(self, payload: dict[str, Any], discord_id: int, name: str) -> OAuthLinked:
        provider = payload["p"]
        async with self.services.session() as session:
            user_id = (await UserRepository(session).get_or_create_discord(discord_id)).id
        if provider == "lastfm":
            _, _, started = await self._relink_lastfm(user_id, str(payload["x"]), verified=True,
                                                      session_key=str(payload["a"]))
            return OAuthLinked("lastfm", name, started)
        spotify_id = str(payload["x"])
        async with self._linking(user_id, "spotify"), self._identity("spotify", spotify_id), \
                self.services.session() as session:
            accounts = self._accounts(session)
            # Spotify links are all verified today (OAuth only); the same rule keeps it so for any
            # unverified row another path might have written. No Spotify import runs in a task here.
            await self._evict_claims(accounts, "spotify", spotify_id, user_id)
            await accounts.link(
                user_id, "spotify", spotify_id, username=name, verified=True,
                access_token=payload["a"], refresh_token=payload.get("r"),
                expires_at=datetime.fromtimestamp(float(payload["t"]), UTC), scope=payload.get("s"))
        return OAuthLinked("spotify", name)

    # --- unlink / overview ----------------------------------------------------------------------

    async def unlink(self, asker: Asker, provider: Provider) -> UnlinkResult:
        """Remove the account and its tokens; imported listens stay (they are the user's history)."""
        async with self.services.session() as session:
            account = await self._accounts(session).get(asker.user_id, provider)
            if account is None:
                return UnlinkResult(provider, False, None,
                                    await ListenRepository(session).count_listens(asker.user_id))
            account_id, username = account.id, account.username or account.external_id
        await self._cancel_import(account_id)
        async with self.services.session() as session:
            await self._accounts(session).unlink(asker.user_id, provider)
            kept = await ListenRepository(session).count_listens(asker.user_id)
        return UnlinkResult(provider, True, username, kept)

    def _progress_for(self, account: LinkedAccount, now: datetime) -> ImportProgress | None:
        lock_live = account.lock_owner is not None and account.lock_expires_at is not None and \
            _aware(account.lock_expires_at) > now
        in_process = account.id in self._imports
        if not (in_process or (account.last_sync_status == "running" and lock_live)):
            return None
        fetched, total = self._progress.get(account.id, (None, None))  # type: ignore[arg-type]
        cursor = account.sync_cursor or {}
        newest = cursor.get("newest_uts")
        return ImportProgress(True, fetched or None, total or None,
                              datetime.fromtimestamp(newest, UTC) if newest else None)

    async def overview(self, asker: Asker) -> AccountOverview:
        user_id, guild_id = asker.user_id, asker.guild_id
        now = utcnow()
        async with self.services.session() as session:
            users = UserRepository(session)
            listens = ListenRepository(session)
            views: list[AccountView] = []
            for account in await self._accounts(session).for_user(user_id):
                problem = None
                if account.last_sync_status == "error":
                    problem = reason_text(account.last_failure_reason, account.last_failure_message)
                views.append(AccountView(
                    provider=account.provider,  # type: ignore[arg-type]
                    username=account.username or account.external_id, verified=account.verified,
                    last_sync_at=_aware(account.last_sync_at) if account.last_sync_at else None,
                    status=account.last_sync_status, problem=problem, reason=account.last_failure_reason,
                    history_complete=account.history_complete, progress=self._progress_for(account, now)))
            settings = await users.settings(user_id)
            visible_here = None
            if guild_id is not None:
                visible_here = user_id in await users.visible_member_ids(guild_id)
            return AccountOverview(views, await listens.count_listens(user_id), await listens.count_artists(user_id),
                                   settings.privacy_level or "public", bool(settings.hide_username), visible_here)

    # --- privacy --------------------------------------------------------------------------------

    async def set_privacy(self, asker: Asker, *, visibility: str | None, scope: Scope | None,
                          hide_username: bool | None) -> PrivacyResult:
        """Apply a /privacy choice. Keeps `UserRepository.visible_member_ids`' rules as the truth:

        - public/hidden + this server  -> the per-guild choice (`GuildMembership.visible`)
        - public/hidden + everywhere   -> the global level ('public'/'private'); older per-server
          exceptions are cleared so the latest "everywhere" choice really applies everywhere
        - this-server-only             -> level 'guild' + visible here; other servers' exceptions cleared
        """
        user_id, guild_id = asker.user_id, asker.guild_id
        if visibility not in (None, "public", "guild", "private"):
            raise InvalidInput("Visibility must be public, this-server-only or hidden.")
        if guild_id is None and (visibility == "guild" or scope == "guild"):
            raise InvalidInput("Use that choice inside a server: in DMs only 'everywhere' makes sense.")
        effective_scope: Scope = scope or ("guild" if guild_id is not None else "everywhere")
        cleared = 0
        async with self.services.session() as session:
            users = UserRepository(session)
            changes: dict[str, Any] = {}
            if hide_username is not None:
                changes["hide_username"] = hide_username
            if visibility == "guild":
                assert guild_id is not None
                changes["privacy_level"] = "guild"
                await users.set_guild_visibility(guild_id, user_id, True)
                cleared = await users.clear_guild_visibility(user_id, keep_guild_id=guild_id)
            elif visibility is not None and effective_scope == "everywhere":
                changes["privacy_level"] = visibility
                cleared = await users.clear_guild_visibility(user_id)
            elif visibility is not None:
                assert guild_id is not None
                await users.set_guild_visibility(guild_id, user_id, visibility == "public")
            settings = await users.update_settings(user_id, **changes) if changes else await users.settings(user_id)
            guild_visible = visible_here = None
            if guild_id is not None:
                membership = next((m for m in await users.memberships(user_id) if m.guild_id == guild_id), None)
                guild_visible = membership.visible if membership is not None else None
                visible_here = user_id in await users.visible_member_ids(guild_id)
            result = PrivacyResult(settings.privacy_level or "public", bool(settings.hide_username), guild_visible,
                                   visible_here, cleared, changed=bool(changes) or visibility is not None)
        if visibility is not None:
            # Cached boards are keyed by guild, not by member: any of them may now show the wrong
            # people. Visibility changes are rare, so dropping the namespace is the safe trade.
            await self.services.cache.delete_namespace("leaderboard")
            await self.services.cache.delete_matching("compat", f"u{user_id}:")
        return result

    # --- forget / export ------------------------------------------------------------------------

    async def forget(self, asker: Asker) -> ForgetResult:
        """Delete every row about the user (schema walk) and every cache entry keyed by them."""
        user_id = asker.user_id
        async with self.services.session() as session:
            account_ids = [a.id for a in await self._accounts(session).for_user(user_id)]
        for account_id in account_ids:  # an import must not write listens back after the delete
            await self._cancel_import(account_id)
        async with self.services.session() as session:
            rows = await PersonalDataRepository(session).forget(user_id)
        cache_keys = 0
        for namespace in (*USER_DERIVED_NAMESPACES, *ACCOUNT_NAMESPACES):
            cache_keys += await self.services.cache.delete_matching(namespace, f"u{user_id}:")
        cache_keys += await self.services.explainer.forget_user(user_id)  # its budget is keyed by a user hash
        log.info("forgot a user", extra={"user_id": user_id, "rows": sum(rows.values()), "cache_keys": cache_keys})
        return ForgetResult({t: n for t, n in rows.items() if n}, cache_keys)

    async def export(self, asker: Asker, *, max_bytes: int = 8 * 1024 * 1024) -> ExportResult:
        """Everything stored about the user as JSON (secrets redacted by the exporter).

        Gzipped when the plain JSON would not fit a Discord upload; refused if even that is too big.
        """
        discord_id = asker.discord_id
        async with self.services.session() as session:
            data = await PersonalDataRepository(session).export(asker.user_id)
        tables = {name: len(rows) for name, rows in data.items()}
        document = {"exported_at": utcnow().isoformat(), "discord_id": str(discord_id), "tables": data}
        raw = await asyncio.to_thread(lambda: json.dumps(document, indent=2, default=str).encode("utf-8"))
        filename = f"sonance-export-{discord_id}.json"
        if len(raw) > max_bytes:
            raw = await asyncio.to_thread(gzip.compress, raw)
            filename += ".gz"
            if len(raw) > max_bytes:
                raise SonanceError("Your data export is too large to send on Discord, even compressed. The "
                                   "bot's operator can make it for you with "
                                   f"`sonance export --discord-id {discord_id}`.")
        return ExportResult(filename, raw, tables)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


__all__ = [
    "LASTFM_CALLBACK_PATH",
    "LINK_CONFIRM_PATH",
    "REASON_TEXT",
    "SPOTIFY_CALLBACK_PATH",
    "AccountOverview",
    "AccountService",
    "AccountView",
    "DatabaseNonceStore",
    "ExportResult",
    "ForgetResult",
    "ImportProgress",
    "LastfmLinkResult",
    "OAuthLinked",
    "PendingLink",
    "PrivacyResult",
    "UnlinkResult",
    "reason_text",
]
