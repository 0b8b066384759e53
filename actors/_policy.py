# Restart policy: a frozen value and a pure decision function.
#
# Semantics follow Erlang/OTP supervisors (restart types permanent / transient /
# temporary; strategies one_for_one / one_for_all; intensity = at most `max_restarts`
# restarts within `within_s`) and Akka's backoff supervision (exponential backoff with
# jitter, reset after a stable period). `decide` takes the clock and the random draw as
# arguments, so it is exact under test and never touches time or I/O.
from __future__ import annotations

import enum
from typing import TypeAlias

import attrs
from attrs import validators as v


class RestartType(str, enum.Enum):
    PERMANENT = "permanent"  # always restart
    TRANSIENT = "transient"  # restart only after an abnormal end
    TEMPORARY = "temporary"  # never restart


class Strategy(str, enum.Enum):
    ONE_FOR_ONE = "one_for_one"  # restart the kernel that died
    ONE_FOR_ALL = "one_for_all"  # restart every kernel of its group


class OnExhausted(str, enum.Enum):
    FAIL = "fail"  # the kernel becomes failed, with the reason
    ESCALATE = "escalate"  # the whole group fails and the owner is told


@attrs.frozen(kw_only=True)
class Backoff:
    """Delay before restart attempt n (1-based): initial_s * factor**(k-1), capped at
    max_s, then spread by +-jitter (a fraction); k = n, or n - 1 when the first attempt
    is immediate (a kernel that was killed once comes back at once)."""

    initial_s: float = attrs.field(default=0.5, validator=v.ge(0))
    first_immediate: bool = True
    factor: float = attrs.field(default=2.0, validator=v.ge(1))
    max_s: float = attrs.field(default=30.0, validator=v.ge(0))
    jitter: float = attrs.field(default=0.2, validator=[v.ge(0), v.le(1)])
    reset_after_s: float = attrs.field(default=60.0, validator=v.ge(0))

    def delay(self, attempt: int, rng_value: float) -> float:
        """The delay for `attempt` with the random draw `rng_value` in [0, 1).

        Example:
            >>> [Backoff(initial_s=0.5, jitter=0).delay(n, 0.0) for n in (1, 2, 3, 4)]
            [0.0, 0.5, 1.0, 2.0]
        """
        k = attempt - 1 if self.first_immediate else attempt
        if k <= 0:
            return 0.0
        base = min(self.initial_s * self.factor ** (k - 1), self.max_s)
        return max(0.0, base * (1 + self.jitter * (2 * rng_value - 1)))


@attrs.frozen(kw_only=True)
class RestartPolicy:
    """How a supervised kernel is restarted.

    Attributes:
        restart: permanent, transient or temporary.
        strategy: one_for_one or one_for_all (within the kernel's group).
        max_restarts: Intensity: restarts allowed within `within_s`.
        within_s: The intensity period.
        backoff: Delays between attempts.
        on_exhausted: fail the kernel, or escalate to its group and owner.
    """

    restart: RestartType = attrs.field(default=RestartType.PERMANENT, converter=RestartType)
    strategy: Strategy = attrs.field(default=Strategy.ONE_FOR_ONE, converter=Strategy)
    max_restarts: int = attrs.field(default=5, validator=[v.instance_of(int), v.ge(0)])
    within_s: float = attrs.field(default=60.0, validator=v.gt(0))
    backoff: Backoff = attrs.field(factory=Backoff)
    on_exhausted: OnExhausted = attrs.field(default=OnExhausted.FAIL, converter=OnExhausted)


# ---- why a kernel ended ------------------------------------------------------------
@attrs.frozen
class Exited:
    code: int | None
    signal: int | None = None

    @property
    def abnormal(self) -> bool:
        return self.signal is not None or self.code not in (0, None)


@attrs.frozen
class HeartbeatLost:
    missed: int = 0
    abnormal = True


@attrs.frozen
class Hung:
    detail: str = ""
    abnormal = True


@attrs.frozen
class StartFailed:
    reason: str = ""
    abnormal = True


Cause: TypeAlias = Exited | HeartbeatLost | Hung | StartFailed


# ---- what to do --------------------------------------------------------------------
@attrs.frozen
class Restart:
    delay_s: float
    attempt: int
    scope: Strategy = Strategy.ONE_FOR_ONE


@attrs.frozen
class GiveUp:
    reason: str


@attrs.frozen
class Escalate:
    reason: str


@attrs.frozen
class Ignore:
    reason: str


Decision: TypeAlias = Restart | GiveUp | Escalate | Ignore


@attrs.frozen
class RestartHistory:
    """Past restarts of one kernel (immutable; methods return new values)."""

    restarts: tuple[float, ...] = ()
    attempt: int = 0
    healthy_since: float | None = None

    def record_restart(self, now: float) -> RestartHistory:
        return RestartHistory(self.restarts + (now,), self.attempt + 1, None)

    def record_healthy(self, now: float) -> RestartHistory:
        return attrs.evolve(self, healthy_since=now)


def decide(policy: RestartPolicy, history: RestartHistory, cause: Cause, now: float, rng_value: float) -> Decision:
    """Decide what to do about a kernel that ended (never called for a deliberate shutdown).

    Example:
        >>> decide(RestartPolicy(), RestartHistory(), Exited(None, 9), now=0.0, rng_value=0.5)
        Restart(delay_s=0.0, attempt=1, scope=<Strategy.ONE_FOR_ONE: 'one_for_one'>)
    """
    if policy.restart is RestartType.TEMPORARY:
        return Ignore("restart type is temporary")
    if policy.restart is RestartType.TRANSIENT and not cause.abnormal:
        return Ignore("transient kernel ended normally")
    attempt = history.attempt
    if history.healthy_since is not None and now - history.healthy_since >= policy.backoff.reset_after_s:
        attempt = 0  # stable long enough: back to the first step of the backoff
    recent = [t for t in history.restarts if now - t < policy.within_s]
    if len(recent) >= policy.max_restarts:
        reason = f"{len(recent)} restarts within {policy.within_s:g}s (limit {policy.max_restarts})"
        return Escalate(reason) if policy.on_exhausted is OnExhausted.ESCALATE else GiveUp(reason)
    return Restart(policy.backoff.delay(attempt + 1, rng_value), attempt + 1, policy.strategy)
