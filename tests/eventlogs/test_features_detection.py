"""Behaviour features on crafted events: each fires when it should, stays silent when it should, and
never uses later events."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eventlogs.detection import evaluation, features, scoring

# a normal step is ~50 units (log10 1.7); far = beyond median + 3 sigma = 10^2.45 ~ 280 units
DISTANCE = features.Band(median=1.7, sigma=0.25, samples=1000)
# a normal action comes ~10 s after the previous one; quick = below median - 2 sigma = 1 s
GAP = features.Band(median=1.0, sigma=0.5, samples=1000)
BANDS = {"distance": DISTANCE, "gap": GAP}


def lol(rows: list[tuple], game_offset: float = 0.0) -> pd.DataFrame:
    """(account, ts, method, x, y, key, status) -> canonical lol events; game clock = whole seconds of ts
    (+ `game_offset`), buy_item as enrichment counts it."""
    frame = pd.DataFrame(rows, columns=["account", "ts", "method", "x", "y", "key", "status"])
    frame["game_s"] = np.floor(frame["ts"]) + game_offset
    frame["x"] = frame["x"].astype(float)
    frame["y"] = frame["y"].astype(float)
    return frame.assign(buy_item=evaluation.items_bought(frame))


def counts(frame: pd.DataFrame, carry: pd.DataFrame | None = None) -> pd.DataFrame:
    carry = pd.DataFrame() if carry is None else carry
    return features.lol_counts(frame, carry, BANDS, far_k=3.0, short_k=2.0)[0]


def test_a_far_move_a_fraction_of_a_second_after_the_previous_action_is_a_jump() -> None:
    result = counts(lol([("a", 10.0, "/move", 0, 0, "q", 0), ("a", 10.3, "/move", 900, 0, "q", 0)]))
    assert result.loc["a", "moves"] == 1
    assert result.loc["a", "jumps"] == 1
    assert round(result.loc["a", "peak_speed_wall"]) == 3000


def test_the_time_counts_from_the_previous_action_whatever_it_was() -> None:
    rows = [
        ("a", 10.0, "/move", 0, 0, "q", 0),
        ("a", 30.0, "/wait", 0, 0, "q", 0),
        ("a", 30.4, "/move", 0, 900, "q", 0),
    ]
    assert counts(lol(rows)).loc["a", "jumps"] == 1  # 20.4 s after the last move, 0.4 s after the /wait


def test_the_same_distance_over_fifteen_seconds_is_not_a_jump() -> None:
    result = counts(lol([("a", 10.0, "/move", 0, 0, "q", 0), ("a", 25.0, "/move", 900, 0, "q", 0)]))
    assert result.loc["a", "far_moves"] == 1
    assert result.loc["a", "jumps"] == 0


def test_a_short_step_milliseconds_later_is_quick_but_not_far_and_not_a_jump() -> None:
    result = counts(lol([("a", 10.1, "/move", 0, 0, "q", 0), ("a", 10.15, "/move", 30, 0, "q", 0)]))
    assert result.loc["a", "quick_moves"] == 1
    assert result.loc["a", "far_moves"] == 0
    assert result.loc["a", "jumps"] == 0


def test_a_move_quick_on_the_wall_clock_but_not_on_the_game_clock_is_not_a_jump() -> None:
    frame = lol([("a", 10.0, "/move", 0, 0, "q", 0), ("a", 10.3, "/move", 900, 0, "q", 0)])
    frame.loc[1, "game_s"] += 5  # the game says five seconds passed: the clocks disagree
    assert counts(frame).loc["a", "jumps"] == 0


def test_the_previous_action_continues_from_the_previous_window_through_the_carry() -> None:
    first = lol([("a", 59.8, "/move", 0, 0, "q", 0)])
    _, _, carry = features.lol_counts(first, pd.DataFrame(), BANDS, far_k=3.0, short_k=2.0)
    second = counts(lol([("a", 60.2, "/move", 800, 0, "q", 0)]), carry)
    assert second.loc["a", "moves"] == 1  # judged against the carried action of the previous window
    assert second.loc["a", "jumps"] == 1


def test_odd_keys_count_only_while_alive() -> None:
    frame = lol([("a", 1.0, "/wait", 0, 0, "alt", 0), ("a", 2.0, "/wait", 0, 0, "tab", 1),
                 ("a", 3.0, "/wait", 0, 0, "q", 0), ("b", 1.0, "/wait", 0, 0, "w", 0)])  # fmt: skip
    result = counts(frame)
    assert result.loc["a", "odd_keys"] == 1
    assert result.loc["a", "keys_alive"] == 2
    assert result.loc["b", "odd_keys"] == 0


def test_actions_while_dead_and_purchases_beyond_the_limit() -> None:
    rows = [("a", float(i), "/getItem", 0, 0, "q", 0) for i in range(8)]
    rows += [("a", 20.0, "/move", 5, 5, "q", 1), ("a", 21.0, "/wait", 5, 5, "q", 1)]
    rows += [("b", float(i), "/getItem", 0, 0, "q", 0) for i in range(6)]
    result = counts(lol(rows))
    assert result.loc["a", "purchases_over"] == 2
    assert result.loc["a", "dead_actions"] == 1
    assert result.loc["a", "dead_events"] == 2
    assert result.loc["b", "purchases_over"] == 0


def test_purchases_beyond_the_limit_count_the_whole_game_and_restart_with_the_next() -> None:
    game = lol([("a", float(i), "/getItem", 0, 0, "q", 0) for i in range(8)])
    assert list(game["buy_item"]) == list(range(1, 9))  # as enrichment stores it
    later = game[game["ts"] >= 6]  # a later window sees the game's count so far, not only its own rows
    assert counts(later).loc["a", "purchases_over"] == 2
    next_game = lol([("a", 4000.0 + i, "/getItem", 0, 0, "q", 0) for i in range(6)], game_offset=-4000.0)
    both = pd.concat([game, next_game], ignore_index=True)
    assert evaluation.items_bought(both)[-1] == 6  # a new game (its clock restarted) counts from 0


def test_no_future_data_a_window_scores_the_same_whatever_comes_after() -> None:
    base = [("a", 1.0, "/move", 0, 0, "q", 0), ("a", 1.3, "/move", 900, 0, "alt", 0)]
    later = [("a", 70.0, "/move", 0, 0, "q", 0), ("a", 70.2, "/move", 950, 0, "tab", 0)]
    alone = counts(lol(base))
    window = lol(base + later)
    with_future = counts(window[window["ts"] < 60])
    pd.testing.assert_frame_equal(alone, with_future)


def test_hotel_refund_without_a_booking_and_instant_booking() -> None:
    frame = pd.DataFrame(
        [("bot", 1.0, "/refund", 0), ("p", 1.0, "/places/3", 0), ("p", 40.0, "/buy/places/3", 1),
         ("p", 50.0, "/refund", 1), ("fast", 1.0, "/places/2", 0), ("fast", 1.05, "/buy/places/2", 1)],
        columns=["account", "ts", "method", "status"],
    )  # fmt: skip
    band = {"click_to_book": features.Band(median=1.3, sigma=0.2, samples=100)}  # lower(3) ~ 5 s
    result, _, _ = features.hotel_counts(frame, pd.DataFrame(), band, band_k=3.0)
    assert result.loc["bot", "refunds_unbooked"] == 1
    assert result.loc["p", "refunds_unbooked"] == 0
    assert result.loc["fast", "fast_bookings"] == 1
    assert result.loc["p", "fast_bookings"] == 0


def test_ad_clicks_inside_the_dedup_window_are_counted_separately() -> None:
    frame = pd.DataFrame(
        [("u", 0.0, True), ("u", 20.0, True), ("u", 70.0, True), ("v", 0.0, True), ("v", 61.0, True)],
        columns=["account", "ts", "click"],
    )
    result, _, _ = features.ad_counts(frame, pd.DataFrame())
    assert result.loc["u", "clicks"] == 3
    assert result.loc["u", "duplicate_clicks"] == 1  # 20 s after a counted click; 70 s is 70 after the first
    assert result.loc["v", "duplicate_clicks"] == 0


def test_raid_success_claimed_with_nobody_alive_is_a_mismatch() -> None:
    rows = [
        ("a", "s1", 10.0, 10.0, 600.0, "/move", 1, 1, 0, 1),
        ("a", "s1", 20.0, 20.0, 600.0, "/wait", 0, 0, 1, 1),
        ("b", "s2", 10.0, 10.0, 600.0, "/move", 1, 1, 0, 0),
        ("b", "s2", 20.0, 20.0, 600.0, "/wait", 0, 0, 1, 0),
    ]
    frame = pd.DataFrame(rows, columns=["account", "session", "ts", "game_s", "end_s", "method", "x", "y", "status",
                                        "success"])  # fmt: skip
    result, _, _ = features.raid_counts(frame, pd.DataFrame(), {"position": None}, band_k=6.0, speed_k=2.0)
    assert result.loc["a", "success_mismatch"] == 1  # everyone in s1 dead, yet success
    assert result.loc["b", "success_mismatch"] == 0


def test_rate_score_is_the_same_for_ten_or_ten_thousand_normal_accounts_and_finds_the_outlier() -> None:
    rng = np.random.default_rng(5)
    for population in (10, 10_000):
        trials = np.full(population, 30.0)
        hits = rng.binomial(30, 0.01, population).astype(float)
        score, _ = scoring.rate_score(hits, trials, np.zeros(population))
        assert score.max() < 7.0, population
        hits[0] = 10.0  # a third of its moves are jumps
        score, p0 = scoring.rate_score(hits, trials, np.zeros(population))
        assert score[0] >= 7.0, (population, score[0])
        assert p0[0] < 0.05


def test_a_cusum_climbs_with_repeated_hits_and_a_lone_hit_fades_with_ordinary_trials() -> None:
    p0 = np.array([0.002, 0.002])
    no_forgetting = np.ones(2)
    cusum = np.zeros((2, len(scoring.ALTERNATIVES)))
    # a: three hits in 12 moves (a jump every fourth move); b: one hit in 12
    cusum = scoring.cusum_update(cusum, np.array([3.0, 1.0]), np.array([12.0, 12.0]), p0, no_forgetting)
    assert cusum[0].max() >= 5.0  # ~5.2 decades: the best alternative is 128x the population's rate
    assert cusum[1].max() < 3.0
    for _ in range(40):  # 40 quiet minutes of 5 moves each
        cusum = scoring.cusum_update(cusum, np.zeros(2), np.full(2, 5.0), p0, no_forgetting)
    assert cusum[1].max() < 0.5
    many = scoring.cusum_update(cusum, np.full(2, 500.0), np.full(2, 600.0), p0, no_forgetting)
    assert (many == scoring.CUSUM_CAP).any()  # bounded, so it can come down
    assert (many <= scoring.CUSUM_CAP).all()


def test_a_hit_is_worth_the_same_for_any_population_rate() -> None:
    """log10(m) per hit whatever p0 is: the score does not depend on how rare the behaviour is overall."""
    for p0 in (1e-4, 1e-3, 1e-2):
        cusum = scoring.cusum_update(np.zeros((1, len(scoring.ALTERNATIVES))), np.array([1.0]), np.array([1.0]),
                                     np.array([p0]), np.ones(1))  # fmt: skip
        expected = [np.log10(min(m * p0, scoring.MAX_ALTERNATIVE_RATE) / p0) for m in scoring.ALTERNATIVES]
        assert np.allclose(cusum[0], expected)


def test_idle_accounts_leave_the_state_unless_a_lasting_value_keeps_them() -> None:
    hour = 3600.0
    state = pd.DataFrame({"window_ts": [0.0, 0.0, 3 * hour], "booked": [0.0, 1.0, 0.0]}, index=["idle", "booked", "x"])
    rows = pd.DataFrame({"window_ts": [3 * hour], "booked": [0.0]}, index=["active"])
    after = scoring.advance_state("hotel", state, rows, 3 * hour)
    assert set(after.index) == {"booked", "x", "active"}
    assert set(scoring.advance_state("lol", state.drop(columns="booked"), rows, 3 * hour).index) == {"x", "active"}
