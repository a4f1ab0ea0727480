from core.backoff import Backoff


def test_exponential_capped_with_jitter_bounds() -> None:
    b = Backoff(1.0, 30.0, rand=lambda: 1.0)
    assert [b.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    lo = Backoff(1.0, 30.0, rand=lambda: 0.0)
    assert [lo.next_delay() for _ in range(3)] == [0.5, 1.0, 2.0]
    b.reset()
    assert b.next_delay() == 1.0
