"""Bearer tokens with read and write scopes, compared in constant time, and a per-token rate
limit: the limits library's sliding window counter (this window's count plus the previous
window's, weighted by how much of it still overlaps) in its asyncio memory storage. Not its moving
window, which keeps one entry per request and expires them with a thread hop after nearly every
request, nor its threaded storage, which starts OS threads under load: both take the event loop's
time from the requests."""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from processors.errors import ConfigurationError
from streams.api.errors import ApiError
from streams.settings import Settings

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")


@dataclass(frozen=True, slots=True)
class Token:
    secret: str
    scopes: frozenset[str]
    name: str  # what the rate limiter and logs call it: never the secret itself


def parse_tokens(text: str, origin: str) -> list[Token]:
    """Entries `SCOPES:TOKEN`, separated by whitespace or newlines; `#` starts a comment."""
    tokens: list[Token] = []
    for line in text.splitlines():
        for entry in line.split("#", 1)[0].split():
            scopes, sep, secret = entry.partition(":")
            wanted = frozenset(s for s in scopes.split(",") if s)
            unknown = wanted - set(SCOPES)
            if not sep or not secret or not wanted or unknown:
                raise ConfigurationError(
                    f"{origin}: token entry {len(tokens) + 1} is not SCOPES:TOKEN with scopes read and/or write",
                    hint="write entries like read,write:s3cr3t or read:another",
                )
            if len(secret) < 16:
                raise ConfigurationError(
                    f"{origin}: token entry {len(tokens) + 1} is shorter than 16 characters",
                    hint="use e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
                )
            tokens.append(Token(secret, wanted, f"token-{len(tokens) + 1}"))
    return tokens


def load_tokens(settings: Settings) -> list[Token]:
    tokens: list[Token] = []
    if settings.api_tokens is not None:
        tokens += parse_tokens(settings.api_tokens.get_secret_value(), "TASKSAGE_API_TOKENS")
    if settings.api_tokens_file is not None:
        path = Path(settings.api_tokens_file)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read TASKSAGE_API_TOKENS_FILE {path}: {exc}") from None
        tokens += parse_tokens(text, str(path))
    return [Token(t.secret, t.scopes, f"token-{n}") for n, t in enumerate(tokens, start=1)]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, tokens: list[Token]) -> None:
    """Refuse to serve an open API beyond this machine unless asked to."""
    if not tokens and not is_loopback(settings.api_host) and not settings.api_insecure:
        raise ConfigurationError(
            f"no API tokens are configured and {settings.api_host} is not a loopback address",
            hint="set TASKSAGE_API_TOKENS or TASKSAGE_API_TOKENS_FILE, or pass --insecure to serve without auth",
        )


class Gate:
    """Who is calling (the token matched in constant time), whether they may, and how often."""

    def __init__(self, tokens: list[Token], rate_limit: str) -> None:
        self.tokens = tokens
        try:
            self.limit: RateLimitItem = parse(rate_limit)
        except ValueError as exc:
            raise ConfigurationError(
                f"TASKSAGE_API_RATE_LIMIT {rate_limit!r} cannot be read: {exc}",
                hint="write e.g. 100/second or 6000/minute",
            ) from None
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def identify(self, presented: str) -> Token | None:
        # Every configured token is compared, so the time taken does not tell which one matched.
        found = None
        for token in self.tokens:
            if secrets.compare_digest(token.secret.encode(), presented.encode()):
                found = token
        return found

    async def throttle(self, who: str) -> None:
        if not await self.limiter.hit(self.limit, who):
            stats = await self.limiter.get_window_stats(self.limit, who)
            wait_s = stats.reset_time - time.time()
            raise ApiError(
                429,
                f"rate limit of {self.limit} exceeded",
                hint="slow down or raise TASKSAGE_API_RATE_LIMIT",
                retriable=True,
                headers={"Retry-After": str(max(1, int(wait_s) + 1))},
            )


_bearer = HTTPBearer(auto_error=False, description="A token with the read or write scope")


def require(scope: Scope) -> Callable[..., Awaitable[str]]:
    """A dependency: the caller's name once it may use `scope` within its rate limit."""

    async def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
    ) -> str:
        gate: Gate = request.app.state.gate
        if not gate.enabled:
            who = request.client.host if request.client else "anonymous"
            await gate.throttle(who)
            return who
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiError(
                401,
                "a bearer token is required",
                hint="send the header Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        token = gate.identify(credentials.credentials)
        if token is None:
            raise ApiError(401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"})
        if scope not in token.scopes:
            raise ApiError(
                403,
                f"the token lacks the {scope} scope",
                headers={"WWW-Authenticate": f'Bearer scope="{scope}"'},
            )
        await gate.throttle(token.name)
        return token.name

    return check
