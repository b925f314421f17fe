"""Reading the `phases` of a subscription schedule update, with Stripe's rules, and the
parameters phases share with other resources: a list of items (checkout's `line_items` too) and
`proration_behavior` (subscription updates too).

Phases follow each other without gaps: a phase without `start_date` starts where the previous
one ends, a phase without an end ends where the next one starts, and the first phase must keep
the start of the phase in progress. Every stored phase has an `end_date` (Stripe's phase object
always does): a last phase given without `end_date` or `duration` lasts one billing period.
"""

from typing import Any, Callable

from local.stripe.errors import invalid, missing, missing_param
from local.stripe.objects import (
    INTERVAL_SECONDS,
    ITERATIONS_REMOVED_IN,
    PERIOD_SECONDS,
    as_dict,
    as_int,
    as_list,
    as_timestamp,
    merged_metadata,
)

PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")


def phase_items(raw: Any, param: str, price_exists: Callable[[str], bool]) -> list[dict[str, Any]]:
    items = as_list(raw, param)
    if not items:
        raise missing_param(param)
    result = []
    for j, item in enumerate(items):
        item = as_dict(item, f"{param}[{j}]")
        price = item.get("price")
        if not price:
            raise missing_param(f"{param}[{j}][price]")
        if not price_exists(price):
            raise missing("price", price, param=f"{param}[{j}][price]", status=400)
        quantity = as_int(item.get("quantity", 1), f"{param}[{j}][quantity]")
        if quantity < 1:
            raise invalid("This value must be greater than or equal to 1.", param=f"{param}[{j}][quantity]")
        result.append({"price": price, "quantity": quantity, "metadata": merged_metadata({}, item.get("metadata"))})
    return result


def proration_behavior(value: Any, param: str, default: str = "create_prorations") -> str:
    if value is None:
        return default
    if value not in PRORATION_BEHAVIORS:
        raise invalid(f"Invalid {param}: must be one of {', '.join(PRORATION_BEHAVIORS)}", param=param)
    return value


def _length(raw: dict[str, Any], param: str, api_version: str | None) -> int | None:
    """Seconds from `duration` (or the older `iterations`), or None when neither is given."""
    if raw.get("iterations") is not None:
        if api_version is not None and api_version >= ITERATIONS_REMOVED_IN:
            raise invalid(f"Received unknown parameter: {param}[iterations]. Use {param}[duration] instead "
                          f"(iterations was removed in API version {ITERATIONS_REMOVED_IN}).",
                          param=f"{param}[iterations]")
        return as_int(raw["iterations"], f"{param}[iterations]") * PERIOD_SECONDS
    if raw.get("duration") is not None:
        duration = as_dict(raw["duration"], f"{param}[duration]")
        interval = duration.get("interval")
        if interval not in INTERVAL_SECONDS:
            raise invalid(f"Invalid {param}[duration][interval]: must be one of day, week, month or year",
                          param=f"{param}[duration][interval]")
        count = as_int(duration.get("interval_count", 1), f"{param}[duration][interval_count]")
        return count * INTERVAL_SECONDS[interval]
    return None


def _optional_timestamp(raw: dict[str, Any], key: str, param: str, now: int) -> int | None:
    return None if raw.get(key) is None else as_timestamp(raw[key], f"{param}[{key}]", now)


def parse_phases(raw_phases: Any, *, current_start: int, now: int, price_exists: Callable[[str], bool],
                 default_proration: str, api_version: str | None) -> list[dict[str, Any]]:
    raws = as_list(raw_phases, "phases")
    if not raws:
        raise missing_param("phases")
    phases: list[dict[str, Any]] = []
    for i, raw in enumerate(raws):
        param = f"phases[{i}]"
        raw = as_dict(raw, param)
        start = _optional_timestamp(raw, "start_date", param, now)
        end = _optional_timestamp(raw, "end_date", param, now)
        length = _length(raw, param, api_version)
        if end is not None and length is not None:
            raise invalid("You may only specify one of these parameters: end_date, duration.",
                          param=f"{param}[end_date]")
        if i == 0:
            if start is None:
                raise missing_param(f"{param}[start_date]")
            if start != current_start:
                raise invalid("You can not modify the start date of the current phase.", param=f"{param}[start_date]")
        else:
            previous = phases[-1]
            if start is None:
                start = previous["end_date"]
                if start is None:
                    raise invalid(f"phases[{i - 1}][end_date] is required: only the last phase may leave out its end.",
                                  param=f"phases[{i - 1}][end_date]")
            elif previous["end_date"] is None:
                previous["end_date"] = start
            elif previous["end_date"] != start:
                raise invalid(f"{param}[start_date] must equal the end_date of the phase before it.",
                              param=f"{param}[start_date]")
            if previous["end_date"] <= previous["start_date"]:
                raise invalid(f"phases[{i - 1}] must end after it starts.", param=f"phases[{i - 1}][end_date]")
        if end is None and length is not None:
            end = start + length
        phases.append({
            "start_date": start, "end_date": end,
            "items": phase_items(raw.get("items"), f"{param}[items]", price_exists),
            "proration_behavior": proration_behavior(raw.get("proration_behavior"), f"{param}[proration_behavior]",
                                                     default_proration),
            "metadata": merged_metadata({}, raw.get("metadata")), "currency": "usd", "billing_cycle_anchor": None,
            "description": None, "trial_end": None,
        })
    last = phases[-1]
    if last["end_date"] is None:
        last["end_date"] = last["start_date"] + PERIOD_SECONDS
    if last["end_date"] <= last["start_date"]:
        raise invalid(f"phases[{len(phases) - 1}] must end after it starts.",
                      param=f"phases[{len(phases) - 1}][end_date]")
    return phases
