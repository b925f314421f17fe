"""The money rules of the billing views: calendar months in UTC, microdollars to credits, and the
proration credit of an unused paid period."""

from datetime import datetime, timedelta, timezone

from billing.monthly import credits_from_microdollars, month_start, next_month_start
from billing.tiers import proration_credit_cents

UTC = timezone.utc


def test_a_month_starts_at_midnight_utc_on_its_first_day():
    assert month_start(datetime(2031, 3, 20, 15, 30, tzinfo=UTC)) == datetime(2031, 3, 1, tzinfo=UTC)
    # 00:30 on March 1st in UTC+2 is still February in UTC.
    assert month_start(datetime(2031, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))) == datetime(2031, 2, 1,
                                                                                                    tzinfo=UTC)
    assert next_month_start(datetime(2031, 12, 1, tzinfo=UTC)) == datetime(2032, 1, 1, tzinfo=UTC)
    assert next_month_start(datetime(2031, 1, 1, tzinfo=UTC)) == datetime(2031, 2, 1, tzinfo=UTC)


def test_credits_are_cents_rounded_to_the_nearest_on_the_total():
    assert credits_from_microdollars(0) == 0
    assert credits_from_microdollars(4_999) == 0 and credits_from_microdollars(5_000) == 1
    assert credits_from_microdollars(45_600) == 5 and credits_from_microdollars(12_300) == 1
    assert credits_from_microdollars(1_000_000) == 100  # one dollar
    assert credits_from_microdollars(-10) == 0


START = datetime(2031, 3, 1, tzinfo=UTC)
END = datetime(2031, 4, 1, tzinfo=UTC)


def test_the_proration_credit_is_the_unused_share_of_the_period():
    assert proration_credit_cents(2_000, START, END, START) == 2_000
    assert proration_credit_cents(2_000, START, END, START + (END - START) / 4) == 1_500
    assert proration_credit_cents(10_000, START, END, START + (END - START) / 3) == 6_667  # to the nearest cent
    assert proration_credit_cents(2_000, START, END, END) == 0
    assert proration_credit_cents(2_000, START, END, END + timedelta(days=3)) == 0
    assert proration_credit_cents(2_000, START, END, START - timedelta(days=1)) == 2_000  # never above the price


def test_no_proration_credit_without_a_paid_period():
    assert proration_credit_cents(0, START, END, START) == 0  # FREE
    assert proration_credit_cents(2_000, None, None, START) == 0  # a paid tier with no Stripe subscription
    assert proration_credit_cents(2_000, END, START, START) == 0  # a period that cannot be one
