"""Per-account features of one window of events, vectorised over columns (numpy/pandas, no loop per event).

Every function takes the window's events as a DataFrame with canonical columns (the services map the
enriched tables onto them) and a `carry` frame indexed by account holding what the account's previous
windows left behind (its last action, whether it has booked, its last click, ...). Nothing reads an event
later than the one being judged: a move is judged against the action before it, a booking's timing the
click before it, a population band the moves up to the end of the window. That is what makes the scores
causal (the same at the minute they are computed as in any later replay).

Canonical columns (`ts` and `game_s` are float seconds; ts = wall clock since the epoch):
- lol:   account, ts, game_s, method, x, y, key, status (0 alive / 1 dead), buy_item (purchases so far
         in the game, this one included)
- hotel: account, ts, method, status (1 = has booked)
- ad:    account, ts, click (bool)
- raid:  account, session, ts, game_s, end_s (boss time limit, s), method, x, y, status, success (0/1)

Each `*_counts` returns (counts per account, details per judged row, new carry). Counts are the
window's raw numbers (hits and trials of each rate feature, rule violations, sums for regularity);
`scoring` adds them to each account's evidence and compares accounts with their population.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

# log10 histogram bins shared by every window (so windows add up): 0.001 to 10^7, 0.01 decades wide.
# 0.05-decade bins were too coarse: the MAD moved a whole bin between windows and, times 1.4826 x k,
# the lol band by a factor of 2.
LOG_BIN_EDGES = np.linspace(-3.0, 7.0, 1001)
# The game clock counts whole seconds: two moves in the same in-game second are < 1 s apart, so dividing
# by 1 s gives a lower bound of their speed (never an infinite one).
GAME_CLOCK_RESOLUTION_S = 1.0
# The wall clock has millisecond resolution.
WALL_CLOCK_RESOLUTION_S = 0.001
LOL_NORMAL_KEYS = frozenset({"q", "w", "e", "r", "d", "f"})
LOL_ITEM_LIMIT = 6
LOL_ACTIONS = ("/move", "/getItem")
# Repeated ad clicks inside this many seconds are not counted (the reference's 1-minute rule).
AD_DEDUP_S = 60.0
# What each kind's functions carry from an account's previous windows (the `carry` columns), and which of
# them stay meaningful however long the account is away (a hotel booking can be refunded days later).
CARRY: dict[str, tuple[str, ...]] = {
    "lol": ("last_ts", "last_game_s", "last_x", "last_y"),
    "hotel": ("last_ts", "booked", "last_click_ts"),
    "ad": ("last_click_ts", "last_counted_click_ts"),
    "raid": ("status", "session", "alive", "last_ts", "last_game_s", "last_x", "last_y"),
}
LASTING_CARRY: dict[str, tuple[str, ...]] = {"hotel": ("booked",)}


@dataclass(frozen=True)
class Band:
    """A robust band of log10 values: median and MAD-based sigma, from a histogram of the population."""

    median: float
    sigma: float
    samples: int

    def upper(self, k: float) -> float:
        return float(10 ** (self.median + k * self.sigma))

    def lower(self, k: float) -> float:
        return float(10 ** (self.median - k * self.sigma))


def log_histogram(values: np.ndarray) -> np.ndarray:
    """Counts of log10(values) in LOG_BIN_EDGES (values <= 0 or NaN are left out; beyond the edges clip)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    logs = np.clip(np.log10(values), LOG_BIN_EDGES[0], LOG_BIN_EDGES[-1] - 1e-9)
    counts, _ = np.histogram(logs, bins=LOG_BIN_EDGES)
    return counts.astype(np.int64)


def band_from_histogram(counts: np.ndarray, min_sigma: float) -> Band | None:
    """Median and 1.4826 x MAD of the histogrammed log10 values (bin centres); None when empty.

    `min_sigma` (decades) keeps a population of near-identical values from making every small
    difference an outlier.
    """
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total <= 0:
        return None
    centres = (LOG_BIN_EDGES[:-1] + LOG_BIN_EDGES[1:]) / 2
    median = _weighted_median(centres, counts)
    mad = _weighted_median(np.abs(centres - median), counts)
    return Band(median=float(median), sigma=max(1.4826 * float(mad), min_sigma), samples=int(total))


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def fast_moves(actions: pd.DataFrame, judged: np.ndarray, band: Band | None, k: float) -> np.ndarray:
    """Judged moves whose speed on the game clock (distance from the previous position over the game
    seconds since the previous action, at least GAME_CLOCK_RESOLUTION_S) is above the population's
    band of log10 speed (median + k sigma); nothing without a band."""
    if band is None:
        return np.zeros(len(actions), dtype=bool)
    return judged & (np.nan_to_num(actions["speed_game"].to_numpy(float)) > band.upper(k))


def _previous_rows(frame: pd.DataFrame, carry: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The window's rows with each account's carried last row in front (marked `carried`), sorted by
    account then time; used to diff consecutive rows across the window boundary."""
    carried = carry.dropna(subset=columns).rename_axis("account").reset_index()[["account", *columns]]
    carried["carried"] = True
    current = frame[["account", *columns]].copy()
    current["carried"] = False
    current["row"] = frame.index
    both = pd.concat([carried, current], ignore_index=True)
    return both.sort_values(["account", "carried", "ts"], ascending=[True, False, True], kind="stable")


def lol_actions(events: pd.DataFrame, carry: pd.DataFrame) -> pd.DataFrame:
    """Every action against the account's previous action (any method), on both clocks.

    The time is measured from the previous action whatever it was (a jump that comes 0.3 s after a
    /wait is as instant as one after a /move), the distance from the previous known position (records
    without coordinates keep the last one). Returns, indexed like `events`: dt_wall, dt_game, dist,
    prev_x, prev_y, known_x, known_y (the position after the action), speed_wall, speed_game, last (the
    account's last action of the window); NaN for an account's first action ever. `carry` holds
    last_ts, last_game_s, last_x, last_y per account (its last action before the window).

    One sort by (account, ts) and array shifts: no per-account loop, no concatenation with the carry.
    """
    codes, accounts = pd.factorize(events["account"])
    ts = events["ts"].to_numpy(float)
    order = np.lexsort((ts, codes))
    codes = codes[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = codes[1:] != codes[:-1]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = first[1:]
    carried = carry.reindex(accounts)
    out: dict[str, np.ndarray] = {}
    for column, carried_name in (("ts", "last_ts"), ("game_s", "last_game_s"), ("x", "last_x"), ("y", "last_y")):
        values = events[column].to_numpy(float)[order]
        before = np.full(len(codes), np.nan)
        if carried_name in carried:
            before = carried[carried_name].to_numpy(float)[codes]
        if column in ("x", "y") and np.isnan(values).any():
            values = _ffill_within(np.where(first & np.isnan(values), before, values), np.flatnonzero(first))
        previous = np.empty(len(values))
        previous[1:] = values[:-1]
        previous[first] = before[first]
        out[column], out[f"prev_{column}"] = values, previous
    dist = np.hypot(out["x"] - out["prev_x"], out["y"] - out["prev_y"])
    dt_wall = out["ts"] - out["prev_ts"]
    dt_game = out["game_s"] - out["prev_game_s"]
    result = pd.DataFrame(
        {
            "dist": dist,
            "dt_wall": dt_wall,
            "dt_game": dt_game,
            "prev_x": out["prev_x"],
            "prev_y": out["prev_y"],
            "known_x": out["x"],
            "known_y": out["y"],
            "speed_wall": dist / np.maximum(dt_wall, WALL_CLOCK_RESOLUTION_S),
            "speed_game": dist / np.maximum(dt_game, GAME_CLOCK_RESOLUTION_S),
            "last": last,
        },
        index=events.index[order],
    )
    return result.reindex(events.index)


def _ffill_within(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs inside each group of consecutive rows (groups begin at `starts`)."""
    groups = np.zeros(len(values), dtype=np.int64)
    groups[starts] = 1
    return pd.Series(values).groupby(np.cumsum(groups)).ffill().to_numpy(float)


def _update_carry(carry: pd.DataFrame, update: pd.DataFrame) -> pd.DataFrame:
    """carry with the accounts in `update` replaced column by column (others kept)."""
    if carry.empty:
        return update.rename_axis("account")
    merged = carry.copy()
    for column in update.columns:
        if column not in merged:
            merged[column] = np.nan
    merged = merged.reindex(merged.index.union(update.index))
    merged.loc[update.index, update.columns] = update
    return merged.rename_axis("account")


def _sum_by_account(index: pd.Index, **series: pd.Series) -> pd.DataFrame:
    """Per-account sums of boolean/number series (each indexed by account, repeated: one label per event;
    the series may cover different rows, e.g. all events and the clicks), 0 for absent accounts."""
    sums = {name: values.groupby(level=0).sum() for name, values in series.items()}
    return pd.DataFrame(sums).reindex(index).fillna(0)


def lol_counts(
    events: pd.DataFrame,
    carry: pd.DataFrame,
    bands: Mapping[str, Band | None],
    *,
    far_k: float,
    short_k: float,
    normal_keys: frozenset[str] = LOL_NORMAL_KEYS,
    item_limit: int = LOL_ITEM_LIMIT,
    actions: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Game-log counts per account for one window.

    1. jumps: a /move farther from the previous position than the population's step band (median +
       far_k sigma of log10 distance) that comes sooner after the previous action than its band of
       intervals (median - short_k sigma of log10 seconds) on the wall clock, and within the same
       bound on the game clock (whole seconds, so at most the bound rounded up): too far in too short a
       time, on both clocks. Far moves alone are ordinary (a normal player sometimes clicks across the
       map), and so are quick actions;
    2. keys pressed while alive, and those outside the game's normal set;
    3. actions (/move, /getItem) while dead;
    4. purchases beyond the per-game item limit: /getItem rows whose `buy_item` (purchases so far in
       this game, counted by enrichment) exceeds it.
    """
    accounts = pd.Index(events["account"].unique(), name="account")
    actions = lol_actions(events, carry) if actions is None else actions
    move = (events["method"] == "/move").to_numpy()
    judged = move & ~np.isnan(actions["dt_wall"].to_numpy())
    far_band, gap_band = bands.get("distance"), bands.get("gap")
    far_limit = far_band.upper(far_k) if far_band is not None else np.inf
    short_limit = gap_band.lower(short_k) if gap_band is not None else 0.0
    dist = actions["dist"].to_numpy()
    far = judged & (dist > far_limit)
    short_wall = judged & (actions["dt_wall"].to_numpy() < short_limit)
    short_game = judged & (actions["dt_game"].to_numpy() <= max(np.ceil(short_limit), GAME_CLOCK_RESOLUTION_S))
    jump = far & short_wall & short_game
    alive = events["status"].to_numpy() == 0
    key = events["key"].fillna("").astype(str).str.lower()
    pressed = alive & (key != "").to_numpy()
    odd = pressed & ~key.isin(normal_keys).to_numpy()
    dead_action = ~alive & events["method"].isin(LOL_ACTIONS).to_numpy()
    buys = events["method"].to_numpy() == "/getItem"
    over = buys & (events["buy_item"].to_numpy(float) > item_limit)

    codes, names = pd.factorize(events["account"])
    position = accounts.get_indexer(names)[codes]

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(position, weights=values.astype(float), minlength=len(accounts))

    counts = pd.DataFrame(
        {
            "events": total(np.ones(len(events))),
            "moves": total(judged),
            "jumps": total(jump),
            "far_moves": total(far),
            "quick_moves": total(short_wall & short_game),
            "keys_alive": total(pressed),
            "odd_keys": total(odd),
            "dead_events": total(~alive),
            "dead_actions": total(dead_action),
            "purchases": total(buys),
            "purchases_over": total(over),
        },
        index=accounts,
    )
    for clock in ("game", "wall"):
        speed = np.where(judged, np.nan_to_num(actions[f"speed_{clock}"].to_numpy()), 0.0)
        peak = np.zeros(len(accounts))
        np.maximum.at(peak, position, speed)
        counts[f"peak_speed_{clock}"] = peak
    final = actions["last"].to_numpy(bool)
    latest = pd.DataFrame(
        {"last_ts": events["ts"].to_numpy(float)[final], "last_game_s": events["game_s"].to_numpy(float)[final],
         "last_x": actions["known_x"].to_numpy()[final], "last_y": actions["known_y"].to_numpy()[final]},
        index=pd.Index(events["account"].to_numpy()[final], name="account"),
    )  # fmt: skip
    new_carry = _update_carry(carry, latest)
    details = events.loc[jump | odd, ["account", "ts", "game_s", "x", "y", "key"]].join(
        actions[["prev_x", "prev_y", "dist", "dt_wall", "speed_game", "speed_wall"]]
    )
    details["jump"] = jump[jump | odd]
    details["odd_key"] = odd[jump | odd]
    return counts, details, new_carry


def click_to_book(events: pd.DataFrame, carry: pd.DataFrame) -> np.ndarray:
    """Seconds from the account's last /places/ click (carried across windows) to each row; NaN if none.
    `events` sorted by ts."""
    method = events["method"].astype(str)
    click = method.str.startswith("/places/").to_numpy()
    last_click = pd.Series(np.where(click, events["ts"].to_numpy(float), np.nan), index=events.index)
    last_click = last_click.groupby(events["account"].to_numpy()).ffill().to_numpy()
    carried = carry["last_click_ts"].reindex(events["account"]).to_numpy() if "last_click_ts" in carry else np.nan
    last_click = np.where(np.isnan(last_click), carried, last_click)
    return events["ts"].to_numpy(float) - last_click


def window_histograms(
    kind: str, events: pd.DataFrame, carry: pd.DataFrame, actions: pd.DataFrame | None = None
) -> dict[str, np.ndarray]:
    """The window's contribution to its kind's population bands (additive log10 histograms); lol takes
    the window's `lol_actions` when the caller has them already (distances and intervals of moves)."""
    if kind == "lol":
        actions = lol_actions(events, carry) if actions is None else actions
        moves = (events["method"] == "/move").to_numpy()
        return {"distance": log_histogram(actions["dist"].to_numpy()[moves]),
                "gap": log_histogram(actions["dt_wall"].to_numpy()[moves])}  # fmt: skip
    if kind == "hotel":
        events = events.sort_values("ts", kind="stable")
        booking = events["method"].astype(str).str.startswith("/buy/places/").to_numpy()
        return {"click_to_book": log_histogram(click_to_book(events, carry)[booking])}
    if kind == "raid":
        actions = lol_actions(events, carry) if actions is None else actions
        moving = (events["method"] == "/move").to_numpy()
        radius = np.hypot(events["x"].to_numpy(float), events["y"].to_numpy(float))[moving]
        judged = raid_judged_moves(events, carry, actions)
        return {"position": log_histogram(radius), "speed": log_histogram(actions["speed_game"].to_numpy()[judged])}
    return {}


def raid_judged_moves(events: pd.DataFrame, carry: pd.DataFrame, actions: pd.DataFrame) -> np.ndarray:
    """Raid /move rows (indexed like `events`) whose previous action is the same player's in the same
    room: a player's first record in a room starts at a new random position on a clock that starts
    again, so it is not compared with the last room's. `actions` is `lol_actions(events, carry)`."""
    order = events.sort_values("ts", kind="stable")
    previous = order.groupby("account")["session"].shift(1)
    if "session" in carry:
        carried = carry["session"].reindex(order["account"]).to_numpy()
        previous = previous.where(previous.notna(), pd.Series(carried, index=order.index))
    same = (previous.astype(object) == order["session"].astype(object)).reindex(events.index).to_numpy(bool)
    moving = (events["method"] == "/move").to_numpy()
    return moving & same & ~np.isnan(actions["dt_game"].to_numpy(float))


def _intervals(events: pd.DataFrame, carry: pd.DataFrame, column: str) -> pd.DataFrame:
    """Seconds between each row and the account's previous row (carried `column` across windows)."""
    prev = carry[[column]].rename(columns={column: "ts"}) if column in carry else pd.DataFrame(columns=["ts"])
    both = _previous_rows(events, prev, ["ts"])
    same = np.zeros(len(both), dtype=bool)
    account = both["account"].to_numpy()
    same[1:] = account[1:] == account[:-1]
    ts = both["ts"].to_numpy(float)
    dt = np.full(len(ts), np.nan)
    dt[1:] = ts[1:] - ts[:-1]
    dt[~same] = np.nan
    out = pd.DataFrame({"account": account, "dt": dt, "carried": both["carried"].to_numpy(bool)})
    return out[~out["carried"]].dropna(subset=["dt"])


def regularity_sums(intervals: pd.DataFrame, accounts: pd.Index, prefix: str) -> pd.DataFrame:
    """Per-account count, sum and sum of squares of log10 intervals (additive, so windows decay and add).

    A script repeats itself: the spread of its log intervals is far below a person's.
    """
    logs = np.log10(np.maximum(intervals["dt"].to_numpy(float), WALL_CLOCK_RESOLUTION_S))
    frame = pd.DataFrame({"account": intervals["account"].to_numpy(), "n": 1.0, "s": logs, "s2": logs**2})
    sums = frame.groupby("account")[["n", "s", "s2"]].sum().reindex(accounts, fill_value=0.0)
    return sums.rename(columns={"n": f"{prefix}_n", "s": f"{prefix}_sum", "s2": f"{prefix}_sum2"})


def hotel_counts(
    events: pd.DataFrame, carry: pd.DataFrame, bands: Mapping[str, Band | None], *, band_k: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Hotel-site counts per account for one window.

    1. refunds without a booking before them (the account never booked, carried across windows);
    2. click-to-book time: seconds from the account's last /places/ click to a /buy/places/; a booking
       faster than the population's lower band (or with no click at all) counts as a fast booking;
    3. request regularity: sums of log10 inter-request intervals.
    """
    events = events.sort_values("ts", kind="stable")
    accounts = pd.Index(events["account"].unique(), name="account")
    method = events["method"].astype(str)
    booking = method.str.startswith("/buy/places/").to_numpy()
    click = method.str.startswith("/places/").to_numpy()
    refund = (method == "/refund").to_numpy()
    booked_before = carry["booked"].reindex(events["account"]).fillna(0).to_numpy() if "booked" in carry else 0
    bookings_so_far = events.assign(b=booking.astype(int)).groupby("account")["b"].cumsum().to_numpy() + booked_before
    refund_unbooked = refund & (bookings_so_far <= 0)

    timing = np.where(booking, click_to_book(events, carry), np.nan)
    band = bands.get("click_to_book")
    lower = band.lower(band_k) if band is not None else 0.0
    fast = booking & (np.isnan(timing) | (timing < lower))

    by_account = events.set_index("account").index
    counts = _sum_by_account(
        accounts,
        events=pd.Series(1, index=by_account),
        refunds=pd.Series(refund, index=by_account),
        refunds_unbooked=pd.Series(refund_unbooked, index=by_account),
        bookings=pd.Series(booking, index=by_account),
        fast_bookings=pd.Series(fast, index=by_account),
    )
    counts = counts.join(regularity_sums(_intervals(events, carry, "last_ts"), accounts, "gap"))
    details = events.assign(click_to_book=timing, fast_booking=fast, refund_unbooked=refund_unbooked)
    details = details.loc[booking | refund]
    update = pd.DataFrame(
        {
            "last_ts": events.groupby("account")["ts"].max(),
            "booked": counts["bookings"] + (carry["booked"].reindex(accounts).fillna(0) if "booked" in carry else 0),
        }
    )
    clicks = events.loc[click].groupby("account")["ts"].max()
    new_carry = _update_carry(_update_carry(carry, update), pd.DataFrame({"last_click_ts": clicks}))
    return counts, details, new_carry


def ad_counts(events: pd.DataFrame, carry: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Ad counts per account for one window.

    1. clicks, and duplicate clicks: a click within AD_DEDUP_S of the account's last counted click (the
       reference's 1-minute rule; they are counted here, never added to click_count);
    2. click regularity: sums of log10 intervals between consecutive clicks.
    A counted click restarts the dedup window; a duplicate does not (it was not counted).
    """
    events = events.sort_values("ts", kind="stable")
    accounts = pd.Index(events["account"].unique(), name="account")
    clicks = events.loc[events["click"].astype(bool), ["account", "ts"]]
    # Dedup needs the last *counted* click, a running state per account: one pass over clicks per
    # account in numpy order. Clicks are ~1 per user-hour in the scenario, so this is over few rows.
    last_counted = carry["last_counted_click_ts"].to_dict() if "last_counted_click_ts" in carry else {}
    duplicate = np.zeros(len(clicks), dtype=bool)
    for i, (account, ts) in enumerate(zip(clicks["account"].to_numpy(), clicks["ts"].to_numpy(float), strict=True)):
        previous = last_counted.get(account, np.nan)
        if not np.isnan(previous) and ts - previous < AD_DEDUP_S:
            duplicate[i] = True
        else:
            last_counted[account] = ts
    by_click = clicks.set_index("account").index
    counts = _sum_by_account(
        accounts,
        events=pd.Series(1, index=events.set_index("account").index),
        clicks=pd.Series(1, index=by_click),
        duplicate_clicks=pd.Series(duplicate, index=by_click),
    )
    counts = counts.join(regularity_sums(_intervals(clicks, carry, "last_click_ts"), accounts, "click_gap"))
    update = pd.DataFrame({"last_click_ts": clicks.groupby("account")["ts"].max()})
    counted = pd.Series(last_counted, dtype=float)
    new_carry = _update_carry(_update_carry(carry, update), pd.DataFrame({"last_counted_click_ts": counted}))
    return counts, clicks.assign(duplicate=duplicate), new_carry


def raid_counts(
    events: pd.DataFrame,
    carry: pd.DataFrame,
    bands: Mapping[str, Band | None],
    *,
    band_k: float,
    speed_k: float,
    actions: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Raid counts per account for one window.

    1. success flag vs survivors: a record is judged once the outcome is decided — its room has no
       player alive (then success must be 0) or its game time has reached the boss's time limit (then
       success must be 1 exactly when a player is alive). The number alive is the room's running count
       from every member's latest status, carried across windows;
    2. impossible positions: a coordinate beyond the population's robust band of |coordinate|, or a
       move while dead;
    3. jumps: a move faster than the population's speed band (`fast_moves`: distance from the previous
       position over the game seconds since the player's previous action in the same room, median +
       speed_k sigma of log10 speed). Raid's wall clock is its start time plus the game clock, so both
       clocks give the same whole seconds and one is judged. A normal player steps ~30 units per move
       whatever the time; a teleporter lands anywhere on the map.
    """
    actions = lol_actions(events, carry) if actions is None else actions
    judged_moves = raid_judged_moves(events, carry, actions)
    jump_rows = fast_moves(actions, judged_moves, bands.get("speed"), speed_k)
    unsorted = events.index
    events = events.sort_values("ts", kind="stable")
    actions = actions.reindex(events.index)
    judged_moves = pd.Series(judged_moves, index=unsorted).reindex(events.index).to_numpy(bool)
    jump_rows = pd.Series(jump_rows, index=unsorted).reindex(events.index).to_numpy(bool)
    accounts = pd.Index(events["account"].unique(), name="account")
    status = events["status"].to_numpy(int)
    prev_status = carry["status"].reindex(events["account"]).to_numpy() if "status" in carry else np.nan
    # previous status of the same account inside the window, else carried
    shifted = events.groupby("account")["status"].shift(1).to_numpy(dtype=float)
    prev = np.where(np.isnan(shifted), prev_status, shifted)
    # change in the room's alive count this row makes: a new member alive +1, death -1, revival +1
    delta = np.where(np.isnan(prev), (status == 0).astype(int), (prev == 1) & (status == 0)) - (
        (prev == 0) & (status == 1)
    )
    alive_before = carry.groupby("session")["alive"].sum() if "alive" in carry and "session" in carry else None
    base = alive_before.reindex(events["session"]).fillna(0).to_numpy() if alive_before is not None else 0
    alive = events.assign(d=delta).groupby("session")["d"].cumsum().to_numpy() + base
    decided_dead = alive <= 0
    time_up = events["game_s"].to_numpy(float) >= events["end_s"].to_numpy(float)
    claimed = events["success"].to_numpy(int) == 1
    mismatch = (decided_dead & claimed) | (~decided_dead & time_up & (claimed != (alive > 0)))

    band = bands.get("position")
    limit = band.upper(band_k) if band is not None else np.inf
    radius = np.hypot(events["x"].to_numpy(float), events["y"].to_numpy(float))
    moving = (events["method"] == "/move").to_numpy()
    impossible = moving & ((radius > limit) | (status == 1))
    by_account = events.set_index("account").index
    counts = _sum_by_account(
        accounts,
        events=pd.Series(1, index=by_account),
        judged_outcomes=pd.Series(decided_dead | time_up, index=by_account),
        success_mismatch=pd.Series(mismatch, index=by_account),
        moves=pd.Series(moving, index=by_account),
        impossible_positions=pd.Series(impossible, index=by_account),
        jump_moves=pd.Series(judged_moves, index=by_account),
        jumps=pd.Series(jump_rows, index=by_account),
    )
    final = events.groupby("account").tail(1)
    last = final.set_index("account")
    update = pd.DataFrame({
        "status": last["status"], "session": last["session"], "alive": (last["status"] == 0),
        "last_ts": last["ts"].astype(float), "last_game_s": last["game_s"].astype(float),
        "last_x": actions.loc[final.index, "known_x"].to_numpy(),
        "last_y": actions.loc[final.index, "known_y"].to_numpy(),
    })  # fmt: skip
    new_carry = _update_carry(carry, update)
    details = events.assign(alive=alive, success_mismatch=mismatch, impossible=impossible, radius=radius,
                            jump=jump_rows, prev_x=actions["prev_x"].to_numpy(), prev_y=actions["prev_y"].to_numpy(),
                            dist=actions["dist"].to_numpy(), speed_game=actions["speed_game"].to_numpy())  # fmt: skip
    return counts, details.loc[mismatch | impossible | jump_rows], new_carry
