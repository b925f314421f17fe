"""The clock's work: what falls due as sandbox time passes.

`now()` is the real clock plus an offset. `advance(seconds)` moves the offset and runs, in time
order, everything that falls due on the way: schedule phases starting, schedules ending,
subscriptions renewing or ending. Each API request first catches up the same way
(`process_due`), so nothing due is ever observed undone.
"""

import time
from typing import Any

from local.stripe.schedules import SchedulesMixin
from local.stripe.webhooks import Event

# A bound on the clock's work per catch-up, so a bug can never spin forever.
MAX_CLOCK_STEPS = 100_000


class ClockMixin(SchedulesMixin):
    def advance(self, seconds: float) -> list[Event]:
        """Moves the clock forward and runs everything that falls due, in time order. Returns the
        events this caused."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        first = len(self.events)
        self._run_clock(until=int(time.time() + self._offset + seconds))
        self._offset += seconds
        return self.events[first:]

    def process_due(self) -> None:
        """Runs what is due by now (the server calls this before every request)."""
        self._run_clock(until=self.now())

    def _run_clock(self, until: int) -> None:
        for _ in range(MAX_CLOCK_STEPS):
            moment = self._next_due()
            if moment is None or moment > until:
                return
            self._pinned = moment
            try:
                for sub in list(self.subscriptions.values()):
                    self._run_subscription(sub, moment)
            finally:
                self._pinned = None
        raise RuntimeError("the sandbox clock did not settle")

    def _next_due(self) -> int | None:
        return min((m for m in map(self._due_at, self.subscriptions.values()) if m is not None), default=None)

    def _due_at(self, sub: dict[str, Any]) -> int | None:
        """When something next happens to this subscription: its schedule's next phase or end,
        its cancellation, or its renewal. (An active schedule always belongs to the subscription
        whose `schedule` names it.)"""
        if sub["status"] == "canceled":
            return None
        moments = [sub["current_period_end"]]
        if sub["cancel_at"] is not None:
            moments.append(sub["cancel_at"])
        schedule = self.schedules.get(sub["schedule"] or "")
        if schedule is not None and schedule["status"] == "active":
            phases, applied = schedule["phases"], self._applied_phase[schedule["id"]]
            moments.append(phases[applied + 1]["start_date"] if applied + 1 < len(phases) else phases[-1]["end_date"])
        return min(moments)

    def _run_subscription(self, sub: dict[str, Any], moment: int) -> None:
        """Everything due for one subscription at `moment`, as one change: schedule phases first
        (so a renewal at the same moment bills the new price), then the period end."""
        due = self._due_at(sub)
        if due is None or due > moment:
            return
        schedule = self.schedules.get(sub["schedule"] or "")
        with self._changing(sub):
            if schedule is not None and schedule["status"] == "active":
                self._run_schedule(schedule, sub, moment)
            if sub["status"] == "canceled":
                return
            if sub["cancel_at"] is not None and sub["cancel_at"] <= moment:
                self._end_subscription(sub)
            elif sub["current_period_end"] <= moment:
                self._renew(sub)
