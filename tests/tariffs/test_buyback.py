"""Buyback: a feed-in tariff fixed by the fiscal year a system was connected, then the post-FIT price."""

from datetime import date
from decimal import Decimal

import pytest

from p2penergy.tariffs import Buyback, FitSchedule

D = Decimal
POST_FIT = Buyback("post-fit", D("8.5"))
FIT = FitSchedule(((2009, D(48)), (2010, D(48)), (2011, D(42)), (2012, D(42)), (2019, D(24))), 10, POST_FIT)


def test_fiscal_year_starts_in_april():
    assert FIT.fiscal_year(date(2012, 4, 1)) == 2012
    assert FIT.fiscal_year(date(2013, 3, 31)) == 2012
    assert FIT.fiscal_year(date(2010, 1, 15)) == 2009


def test_a_fy2012_home_is_credited_42_inside_its_term():
    assert FIT.buyback(date(2012, 10, 1), date(2020, 8, 1)) == Buyback("fit-fy2012", D(42))
    assert FIT.buyback(date(2013, 2, 20), date(2020, 8, 1)).price_per_kwh == D(42)


def test_after_ten_years_the_post_fit_price():
    # connected December 2009: FIT until December 2019, so August 2020 is post-FIT
    assert FIT.buyback(date(2009, 12, 1), date(2020, 8, 1)) == POST_FIT
    # a month starting inside the term is billed at FIT; the month the term has ended before, not
    assert FIT.buyback(date(2009, 12, 10), date(2019, 12, 1)) == Buyback("fit-fy2009", D(48))
    assert FIT.buyback(date(2009, 12, 1), date(2019, 12, 1)) == POST_FIT
    assert FIT.term_end(date(2010, 2, 28)) == date(2020, 2, 28)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: FIT.buyback(date(2015, 6, 1), date(2020, 8, 1)), "^fit: no price for fiscal year 2015"),
        (lambda: FIT.buyback(date(2020, 9, 1), date(2020, 8, 1)), "^pv_connected: 2020-09-01 is after"),
        (lambda: FitSchedule(((2012, D(42)),), 0, POST_FIT), "^term_years:"),
        (lambda: FitSchedule(((2012, D(-1)),), 10, POST_FIT), "^fit: price"),
    ],
)
def test_bad_inputs_name_the_field(make, match):
    with pytest.raises(ValueError, match=match):
        make()
