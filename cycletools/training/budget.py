"""Time-boxed training: plan the steps so a run ends inside a wall-clock budget with the paper's shape.

The run measures its own speed (after a short warm-up, which excludes compilation and cuDNN's
algorithm search), then plans N steps: the learning rate is constant for the first half and
falls linearly to zero over the second half, reaching zero at step N. While the run is still in
the first half, N is refined from the speed measured so far (epoch ends, checkpoints and sample
grids included); once the decay has begun N is fixed, and only shortened (the decay steepened
from where it stands) if the run falls behind. A resumed run continues the same plan with the
time that is left.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field

from cycletools.errors import CycletoolsError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
MAX_BUDGET = 365 * 86400.0


def parse_duration(value: str | float | int) -> float:
    """Seconds in ``90s``, ``30m``, ``2h``, ``1h30m``, ``1.5h`` or a plain number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION.findall(text)
            if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
                raise CycletoolsError(f"not a duration: {value!r} (examples: 90s, 30m, 2h, 1h30m)") from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise CycletoolsError(f"a time budget must be positive, not {value!r}")
    if seconds > MAX_BUDGET:
        raise CycletoolsError(f"a time budget of {value!r} is more than a year; give at most 365d")
    return seconds


def format_duration(seconds: float) -> str:
    """``95`` → ``1m35s``; ``7200`` → ``2h00m``; under 10 s to the tenth: ``1.6`` → ``1.6s``."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f}".removesuffix(".0") + "s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class TimeBudget:
    """The step plan of a time-boxed run; ``factor(k)`` is the learning-rate multiplier of step ``k``.

    Steps are counted from 1 over the whole run (resumes included). Until the decay begins,
    ``total_steps`` is an estimate; ``decay_start`` (the last step at the constant rate, or the
    step a shortened decay starts from) is set when the decay begins, with ``decay_from``, the
    factor the decay falls from.
    """

    seconds: float
    used: float = 0.0
    total_steps: int | None = None
    decay_start: int | None = None
    decay_from: float = 1.0
    warmup_steps: int = 2
    trusted_steps: int = 10
    slowest_step: float = 0.0  # the longest a step took (seconds, averaged between two plannings): a yardstick
    _clock: dict = field(default_factory=dict, repr=False, compare=False)

    # ---------------------------------------------------------------- the schedule
    def factor(self, step: int) -> float:
        """The learning-rate multiplier for step ``step`` (1-based): 1, then linear to 0 at the last step."""
        if self.decay_start is None or step <= self.decay_start:
            return self.decay_from if self.decay_start is not None else 1.0
        span = self.total_steps - self.decay_start
        return self.decay_from * max(0.0, (self.total_steps - step) / span)

    def finished(self, step: int) -> bool:
        """Whether the planned steps are done (never before the plan is fixed)."""
        return self.decay_start is not None and step >= self.total_steps

    @property
    def decaying(self) -> bool:
        return self.decay_start is not None

    # ---------------------------------------------------------------- measuring and planning
    def start(self, step: int) -> None:
        """Begin (or resume) timing at ``step`` steps done."""
        now = time.monotonic()
        self._clock = {"started": now, "step": step, "warm_step": None, "warm_time": None, "reserve": None,
                       "last_step": step, "last_time": now}

    def elapsed(self) -> float:
        """Seconds of the budget spent, earlier sessions of the run included."""
        return self.used + (time.monotonic() - self._clock["started"] if self._clock else 0.0)

    def remaining(self) -> float:
        return self.seconds - self.elapsed()

    def note_finishing_cost(self, seconds: float) -> None:
        """How long the end-of-run work took last time (checkpoint, weights, samples): kept in reserve."""
        self._clock["reserve"] = seconds

    def after_step(self, step: int) -> str | None:
        """Update the plan after step ``step``; returns a line worth telling the user, if any."""
        clock = self._clock
        now = time.monotonic()
        if step > clock["last_step"]:
            self.slowest_step = max(self.slowest_step, (now - clock["last_time"]) / (step - clock["last_step"]))
            clock["last_step"], clock["last_time"] = step, now
        if step - clock["step"] < self.warmup_steps:
            return None
        if clock["warm_step"] is None:
            clock["warm_step"], clock["warm_time"] = step, now
            if self.remaining() > 0:
                return None  # the speed is measured from here on
        measured = step - (clock["warm_step"] or step)
        rate = measured / (now - clock["warm_time"]) if measured else 0.0
        reserve = clock["reserve"] if clock["reserve"] is not None else 0.02 * self.seconds
        left = self.remaining() - reserve
        affordable = step + max(1, math.floor(rate * left)) if rate > 0 and left > 0 else step + 1
        if self.decay_start is None:
            self.total_steps = affordable
            # Half the steps at the constant rate. With the speed averaged since the warm-up this is also
            # half the measured time, so a run that slows down starts its decay in time.
            if step >= affordable // 2 or left <= 0:
                self.decay_start, self.total_steps = step, max(affordable, step + 1)
                return (f"time budget: {self.total_steps} steps in all ({rate:.2f} steps/s measured); "
                        f"the learning rate now falls linearly to zero at step {self.total_steps}")
            return None
        # Behind: the measured speed (over enough steps to trust, e.g. after a resume) cannot reach the plan.
        behind = (measured >= self.trusted_steps and affordable < self.total_steps
                  and (self.total_steps - affordable) > 0.01 * self.total_steps + 1)
        if behind and step < self.total_steps:
            self.decay_from, self.decay_start = self.factor(step), step
            self.total_steps = max(affordable, step + 1)
            return (f"time budget: running slower than planned; the decay now ends at step {self.total_steps}")
        return None

    def summary(self, steps: int) -> str:
        """``120 steps in 29s of the 30s time budget``, or how far over the budget the run went."""
        spent = self.elapsed()
        if spent <= self.seconds or format_duration(spent) == format_duration(self.seconds):
            return f"{steps} steps in {format_duration(spent)} of the {format_duration(self.seconds)} time budget"
        return (f"{steps} steps in {format_duration(spent)}, over the {format_duration(self.seconds)} time budget "
                f"by {format_duration(spent - self.seconds)}")

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        state["used"] = self.elapsed()
        return state

    @classmethod
    def from_state(cls, state: dict) -> "TimeBudget":
        return cls(**{k: v for k, v in state.items() if not k.startswith("_")})
