"""Signed, expiring, single-use OAuth state."""

from __future__ import annotations

import pytest

from core.sources.oauth_state import InMemoryNonceStore, OAuthStateError, OAuthStateSigner


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer(clock: Clock) -> OAuthStateSigner:
    return OAuthStateSigner("secret-key", InMemoryNonceStore(clock), ttl_s=600, clock=clock)


async def test_round_trip_returns_the_discord_user(signer: OAuthStateSigner) -> None:
    state = signer.issue(123456789012345678, "spotify")
    assert await signer.verify(state, "spotify") == 123456789012345678


async def test_single_use(signer: OAuthStateSigner) -> None:
    state = signer.issue(1)
    await signer.verify(state)
    with pytest.raises(OAuthStateError) as err:
        await signer.verify(state)
    assert err.value.detail == "already used"


async def test_expiry(signer: OAuthStateSigner, clock: Clock) -> None:
    state = signer.issue(1)
    clock.now += 601
    with pytest.raises(OAuthStateError) as err:
        await signer.verify(state)
    assert err.value.detail == "expired"


@pytest.mark.parametrize("mutate", [
    lambda s: s[:-2] + ("AA" if not s.endswith("AA") else "BB"),  # signature
    lambda s: "x" + s,  # payload
    lambda s: s.split(".")[0],  # no signature
    lambda s: "",
])
async def test_tampering_is_rejected(signer: OAuthStateSigner, mutate: object) -> None:
    state = signer.issue(1)
    with pytest.raises(OAuthStateError):
        await signer.verify(mutate(state))  # type: ignore[operator]


async def test_other_key_or_purpose_is_rejected(signer: OAuthStateSigner, clock: Clock) -> None:
    other = OAuthStateSigner("another-key", InMemoryNonceStore(clock), clock=clock)
    with pytest.raises(OAuthStateError):
        await signer.verify(other.issue(1))
    with pytest.raises(OAuthStateError) as err:
        await signer.verify(signer.issue(1, "lastfm"), "spotify")
    assert err.value.detail == "wrong purpose"


async def test_nonce_store_forgets_after_ttl(clock: Clock) -> None:
    store = InMemoryNonceStore(clock)
    assert await store.consume("n", 10)
    assert not await store.consume("n", 10)
    clock.now += 11
    assert await store.consume("n", 10)
