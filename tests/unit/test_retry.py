from swarmops.domain.retry import Backoff


def test_backoff_doubles_up_to_the_cap_and_stops_after_the_limit() -> None:
    b = Backoff(limit=7, base=5, cap=180)
    assert [b.delay(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 180, None]
    assert Backoff().delay(0) is None
