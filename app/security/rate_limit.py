"""Rate limits on what is worth abusing: log-in, sign-up, upload, chat and making study aids.

Each action has a limit per client IP and one per user (for log-in: per account tried, so a password
guesser is slowed down whatever IP it comes from). Counts are moving windows in Redis (the `limits`
library), shared by every web process; an over-limit request gets 429 with `Retry-After`. Windows
expire by themselves, so a victim whose account is being guessed is slowed for at most one window,
never locked out. The limits are settings (`RATE_LIMIT_*`, in the `limits` notation: "10/minute").
"""

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from app import metrics
from app.config import Settings
from app.exceptions import LimitReached

log = logging.getLogger(__name__)

Action = Literal["login", "register", "upload", "chat", "study"]
WHAT = {
    "login": "log-in attempts",
    "register": "sign-ups from your network",
    "upload": "uploads",
    "chat": "questions",
    "study": "study aids made",
}


@dataclass
class Rule:
    per_ip: RateLimitItem
    per_user: RateLimitItem | None


def rules_from(settings: Settings) -> dict[str, Rule]:
    return {
        "login": Rule(parse(settings.rate_limit_login_per_ip), parse(settings.rate_limit_login_per_account)),
        "register": Rule(parse(settings.rate_limit_register_per_ip), None),
        "upload": Rule(parse(settings.rate_limit_upload_per_ip), parse(settings.rate_limit_upload_per_user)),
        "chat": Rule(parse(settings.rate_limit_chat_per_ip), parse(settings.rate_limit_chat_per_user)),
        "study": Rule(parse(settings.rate_limit_study_per_ip), parse(settings.rate_limit_study_per_user)),
    }


def _storage_uri(redis_url: str) -> str:
    return "async+" + (
        redis_url.replace("unix://", "redis+unix://", 1) if redis_url.startswith("unix://") else redis_url
    )


class RateLimiter:
    def __init__(self, redis_url: str, settings: Settings) -> None:
        self.storage = RedisStorage(_storage_uri(redis_url), implementation="redispy", key_prefix="studyrag")
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.rules = rules_from(settings)

    async def retry_after(self, action: str, *, ip: str | None, who: str | None) -> tuple[int, str] | None:
        """Count one request; None when it is within every limit, else the seconds to wait and the
        limit passed ("ip" or "user")."""
        rule = self.rules[action]
        for scope, item, key in (("ip", rule.per_ip, ip), ("user", rule.per_user, who)):
            if item is None or not key:
                continue
            if not await self.strategy.hit(item, action, scope, key):
                stats = await self.strategy.get_window_stats(item, action, scope, key)
                return max(1, math.ceil(stats.reset_time - time.time())), scope
        return None

    async def enforce(self, action: str, *, ip: str | None, who: str | None) -> None:
        """Count one request against `action`'s limits (a key left out is not counted), or raise 429."""
        try:
            refused = await self.retry_after(action, ip=ip, who=who)
        except Exception:  # Redis down: the request goes through, and someone is told
            log.exception("rate limit check failed for %s", action)
            return
        if refused is not None:
            wait, scope = refused
            metrics.RATE_LIMIT_REFUSALS.labels(action, scope).inc()
            raise LimitReached(
                f"Too many {WHAT[action]}. Try again in {wait} second{'s' if wait != 1 else ''}.",
                headers={"Retry-After": str(wait)},
            )
