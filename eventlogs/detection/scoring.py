"""Scoring one window: each account's evidence against its population, carried from window to window.

1. Population rate: for each rate feature (hits of trials: jumps of moves, odd keys of keys, ...) the
   accounts' counts decayed with a POPULATION_HALF_LIFE give the population's pooled rate p0, per group
   (raid: the room's session; the other kinds: the whole kind, whose records carry no room), without
   the account itself, without accounts that are outliers themselves (binomial tail, iterated until the
   set stops growing: six suspects among 100 players otherwise raise p0 twenty-fold and hide each
   other), plus a +0.5/+1 prior, so a population of 10 is simply less certain than one of 10,000.
2. Evidence: per rate and per alternative rate p1 = m x p0 (m in ALTERNATIVES, the abnormal rate being
   unknown), a CUSUM of the window's log-likelihood ratio (decades):
       S = clip(S x forgetting + hits log10(p1/p0) + misses log10((1-p1)/(1-p0)), 0, CUSUM_CAP).
   A hit adds log10(m) whatever p0 is; every ordinary trial takes a little back, so a normal account's
   rare hit fades while an account that keeps showing the behaviour climbs. Evidence is additive over
   windows (no multiple looks at a p-value) and the score is a log-likelihood ratio: the same meaning
   for 10 players or 10,000 and for any rate the population itself reveals. The time forgetting
   (FORGET_HALF_LIFE) makes an account that went quiet start afresh.
3. A rule violation (impossible by the game's or the site's rules) scores RULE_SCORE while it is recent;
   regularity (a script repeats itself) is a robust z below the population's median spread of log10
   intervals (normal tail).
4. The account's score is the highest feature score; its reasons are every feature at REASON_SCORE or
   more with the account's value, the population's and the ratio. An account is flagged while its score
   reaches the threshold and a feature scoring REASON_SCORE or more fired within RECENT_SECONDS; otherwise a
   cheater who stopped would stay flagged until the evidence fades, and its event would not close.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from . import features

# Alternatives: the abnormal account's rate as a multiple of the population's. Log-spaced over the
# range a behaviour worth flagging shows (8x to 512x; the described lol suspect is ~180x the normal
# jump rate, the subtle one ~90x). On seeds 1000-1009 a grid of (32, 128) or (8, 32, 128, 512) gave
# the same detection times; the wider grid keeps slower behaviours (other kinds) in reach.
ALTERNATIVES = (8.0, 32.0, 128.0, 512.0)
# The alternative rate is at most this. On seeds 1000-1009 a cap of 0.5 let a normal run of odd keys
# (3 % of keys) score 5.5 and two close normal jumps 4.9; with 0.25 the highest were 5.3 and 4.2, while
# the described suspect (a third of its moves jump) gains the same evidence per move (~0.6 decades).
MAX_ALTERNATIVE_RATE = 0.25
CUSUM_CAP = 20.0
FORGET_HALF_LIFE_MIN = 20.0
POPULATION_HALF_LIFE_MIN = 10.0
RULE_HALF_LIFE_MIN = 5.0
REGULARITY_HALF_LIFE_MIN = 20.0
# Minutes after which an idle account's state is dropped (its evidence has decayed to 1/64); carried
# values in features.LASTING_CARRY keep it.
STATE_TTL_MIN = 120.0
RECENT_SECONDS = 180.0
# Accounts scoring this high on a rate's binomial tail (p < 1 %) are left out of the population's rate.
OUTLIER_SCORE = 2.0
OUTLIER_PASSES = 6
REASON_SCORE = 2.0
RULE_SCORE = 12.0
# -log10 p is capped: beyond it the binomial tail is below double precision's meaning.
MAX_SCORE = 50.0
# Regularity needs this many intervals (decayed) before an account's spread is compared, and this many
# such accounts in the population before the population's spread is trusted.
MIN_INTERVALS = 8.0
MIN_POPULATION = 5
MIN_SIGMA_DECADES = 0.05


# ad: a person clicks an ad a few times an hour, a click bot every few seconds, so in a minute's population
# (the accounts active in it) three bots hold ~90 % of the (decayed) clicks: pooled, their duplicates (~90 %
# of a bot's clicks, ~15 % of a person's) made p0 ~0.85, they hid each other and none was flagged. Each
# account adds at most AD_POOL_CAP decayed clicks to the pooled rate, so a bot's own rate stands out, it
# leaves the population as an outlier and p0 falls to the people's. On seeds 1000-1004 (3 bots, 1,000
# people each) a cap of 3 or 1 flagged 15 of 15 bots (highest normal score 0.6 / 1.2), no cap 0 of 15;
# raising the CUSUM's highest alternative rate (0.25) to 0.5 or 0.9 was not needed. Cap 3 on seeds
# 1005-1009: 15 of 15, highest normal score 1.0.
AD_POOL_CAP = 3.0


@dataclass(frozen=True)
class Rate:
    """hits out of trials (e.g. jumps out of moves): an account above its population's rate."""

    name: str
    hits: str
    trials: str
    label: str


@dataclass(frozen=True)
class Rule:
    """A count that a normal account never has (the game's or the site's rules forbid it)."""

    name: str
    count: str
    label: str


@dataclass(frozen=True)
class Regularity:
    """Spread of log10 intervals (count/sum/sum of squares under `prefix`): below the population's = a script."""

    name: str
    prefix: str
    label: str


@dataclass(frozen=True)
class KindSpec:
    rates: tuple[Rate, ...] = ()
    rules: tuple[Rule, ...] = ()
    regularities: tuple[Regularity, ...] = ()
    group: str | None = None
    # band name -> minimum sigma (decades); the bands the kind's counts need
    bands: dict[str, float] = field(default_factory=dict)
    # hit counts whose burstiness over the account's active minutes is reported (`<name>_burstiness`)
    bursts: tuple[str, ...] = ()
    # trials one account contributes to its population's pooled rate at most (None: all): see AD_POOL_CAP
    pool_cap: float | None = None


SPECS: dict[str, KindSpec] = {
    "lol": KindSpec(
        rates=(
            Rate("jumps", "jumps", "moves", "moves too far in too short a time, on both clocks"),
            Rate("odd_keys", "odd_keys", "keys_alive", "keys outside the game's normal set while alive"),
            Rate("dead_actions", "dead_actions", "dead_events", "actions (/move, /getItem) while dead"),
        ),
        rules=(Rule("purchases_over", "purchases_over", "item purchases beyond the per-game limit"),),
        bands={"distance": 0.1, "gap": 0.1},
        bursts=("jumps",),
    ),
    "hotel": KindSpec(
        rates=(Rate("fast_bookings", "fast_bookings", "bookings", "bookings faster after the click than the band"),),
        rules=(Rule("refunds_unbooked", "refunds_unbooked", "refunds without a booking"),),
        regularities=(Regularity("request_regularity", "gap", "request intervals more regular than people's"),),
        bands={"click_to_book": 0.1},
    ),
    "ad": KindSpec(
        rates=(Rate("duplicate_clicks", "duplicate_clicks", "clicks", "clicks inside the 1-minute dedup window"),),
        regularities=(Regularity("click_regularity", "click_gap", "click intervals more regular than people's"),),
        pool_cap=AD_POOL_CAP,
    ),
    "raid": KindSpec(
        rates=(Rate("jumps", "jumps", "jump_moves", "moves faster than the population's speed band"),),
        rules=(
            Rule("success_mismatch", "success_mismatch", "success flag inconsistent with the survivors"),
            Rule("impossible_positions", "impossible_positions", "positions beyond the map or moves while dead"),
        ),
        group="session",
        bands={"position": 0.05, "speed": 0.1},
        bursts=("jumps",),
    ),
}
# The band multiple (sigma of log10) beyond which a value counts: hotel a fast booking, raid off the map.
BAND_K = {"hotel": 3.0, "raid": 6.0}
# lol: a move is far beyond median + 3 sigma of log10 distance (~270 units; a normal step, sigma 40 per
# axis, almost never) and quick below median - 2 sigma of log10 seconds since the previous action
# (~0.9 s; 4 % of normal actions). On seeds 1000-1004 0.18 % of normal moves are both, 32 % of the
# described suspect's: a hit is worth ~2.2 decades. A speed band (distance / time, 3 sigma) let 0.56 % of
# normal moves through (1.8 decades; ~30 s slower in a simulation on seeds 2000-2019); a quicker bound
# (2.5 sigma, 0.5 s) missed a fifth of the suspect's jumps (median detection on seeds 2000-2009 at
# threshold 6: 248 s against 121 s).
LOL_FAR_K = 3.0
LOL_SHORT_K = 2.0
# raid: a jump is a move faster than median + RAID_SPEED_K sigma of log10 speed (distance over game
# seconds, >= 1 s). Chosen on raid seeds 1000-1009 with 3 teleporters each (30 abnormal, 400 normal), at
# threshold 6: k = 3 let ~10 % of a teleporter's moves through and flagged 33 % of them (seeds 1000-1002);
# 2.5 / 2 / 1.75 / 1.5 flagged 28 / 29 / 29 / 29 of 30 with a highest normal score of 0 / 1.6 / 2.7 / 4.6
# (median time to detection 210 / 154 / 141 / 148 s): 2 keeps the normal scores far from the threshold.
RAID_SPEED_K = 2.0


def binomial_tail_score(hits: np.ndarray, trials: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """-log10 P(X >= hits) for X ~ Binomial(trials, p0), continuous in hits/trials (decayed counts);
    0 where the account is not above p0."""
    hits, trials, p0 = (np.asarray(a, dtype=float) for a in (hits, trials, p0))
    above = (hits > 0) & (hits > trials * p0) & (trials > 0)
    score = np.zeros(len(hits))
    if above.any():
        k, n, p = hits[above], np.maximum(trials[above], hits[above]), p0[above]
        tail = special.betainc(k, n - k + 1.0, p)
        score[above] = -np.log10(np.maximum(tail, 10.0**-MAX_SCORE))
    return np.minimum(score, MAX_SCORE)


def population_rate(
    hits: np.ndarray, trials: np.ndarray, groups: np.ndarray, exclude: np.ndarray, cap: float | None = None
) -> np.ndarray:
    """Per account: the pooled rate of its group without itself and without `exclude`d accounts, with a
    +0.5/+1 prior; with `cap`, an account's hits and trials are scaled down to at most `cap` trials."""
    codes, _ = pd.factorize(groups)
    if cap is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(trials > cap, cap / trials, 1.0)
        hits, trials = hits * scale, trials * scale
    own_k = np.where(exclude, 0.0, hits)
    own_n = np.where(exclude, 0.0, trials)
    total_k = np.bincount(codes, weights=own_k)[codes]
    total_n = np.bincount(codes, weights=own_n)[codes]
    return (total_k - own_k + 0.5) / (total_n - own_n + 1.0)


def rate_score(
    hits: np.ndarray, trials: np.ndarray, groups: np.ndarray, pool_cap: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Binomial-tail score and population rate of one rate feature. Accounts scoring OUTLIER_SCORE or
    more leave the population and the rate is recomputed, until the set of outliers stops growing (a
    few cheaters inflate the pooled rate enough to hide each other on the first pass)."""
    excluded = np.zeros(len(hits), dtype=bool)
    for _ in range(OUTLIER_PASSES):
        p0 = population_rate(hits, trials, groups, excluded, pool_cap)
        score = binomial_tail_score(hits, trials, p0)
        outliers = excluded | (score >= OUTLIER_SCORE)
        if (outliers == excluded).all():
            break
        excluded = outliers
    return score, p0


def cusum_update(
    previous: np.ndarray, hits: np.ndarray, trials: np.ndarray, p0: np.ndarray, forgetting: np.ndarray
) -> np.ndarray:
    """One window of the CUSUMs (accounts x ALTERNATIVES): see the module docstring, step 2."""
    p0 = np.clip(p0, 1e-12, MAX_ALTERNATIVE_RATE)[:, None]
    p1 = np.minimum(np.asarray(ALTERNATIVES)[None, :] * p0, MAX_ALTERNATIVE_RATE)
    p1 = np.maximum(p1, p0)
    misses = np.maximum(trials - hits, 0.0)[:, None]
    llr = hits[:, None] * np.log10(p1 / p0) + misses * np.log10((1.0 - p1) / (1.0 - p0))
    return np.clip(previous * forgetting[:, None] + llr, 0.0, CUSUM_CAP)


def regularity_score(
    n: np.ndarray, total: np.ndarray, total2: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score, spread and population median spread of log10 intervals (lower spread = more regular)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        spread = np.sqrt(np.maximum(total2 / n - mean**2, 0.0))
    enough = n >= MIN_INTERVALS
    frame = pd.DataFrame({"g": groups, "s": np.where(enough, spread, np.nan)})
    grouped = frame.groupby("g")["s"]
    median = grouped.transform("median").to_numpy()
    mad = frame.assign(d=(frame["s"] - median).abs()).groupby("g")["d"].transform("median").to_numpy()
    count = grouped.transform("count").to_numpy()
    sigma = np.maximum(1.4826 * mad, MIN_SIGMA_DECADES)
    z = (median - spread) / sigma
    usable = enough & (count >= MIN_POPULATION) & (z > 0)
    score = np.zeros(len(n))
    score[usable] = np.minimum(-special.log_ndtr(-z[usable]) / np.log(10), MAX_SCORE)
    return score, spread, median


def fano_factor(minutes: np.ndarray, total: np.ndarray, total2: np.ndarray) -> np.ndarray:
    """Variance over mean of hits per active minute (decayed counts: minutes, sum, sum of squares); 0
    without hits. A steady rate (Poisson) gives ~1, hits packed into a few minutes far more: a cheater
    who cheats in bursts, or whose jumps come in volleys, stands out from one who jumps evenly."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / minutes
        variance = np.maximum(total2 / minutes - mean**2, 0.0)
        return np.where((total > 0) & (minutes > 0), variance / mean, 0.0)


@dataclass
class Scored:
    """The result of scoring one window.

    `accounts`: every account active in the window (index): the window's counts, the decayed counts
    `k_*`/`n_*`, `score_*` per feature, score, flagged, reasons (list of dicts; one shared empty list for
    the accounts without a reason: do not mutate), group, window_ts,
    last_hit_ts (the last window in which a feature scoring REASON_SCORE or more fired).
    `state`: every tracked account's state after the window (the next window's `state`)."""

    accounts: pd.DataFrame
    state: pd.DataFrame
    histograms: dict[str, np.ndarray]
    bands: dict[str, features.Band | None]
    details: pd.DataFrame


def hit_columns(kind: str) -> list[str]:
    """The window counts that are evidence in themselves (hits of rates, rule violations)."""
    spec = SPECS[kind]
    return [rate.hits for rate in spec.rates] + [rule.count for rule in spec.rules]


def window_counts(
    kind: str, events: pd.DataFrame, carry: pd.DataFrame, history: dict[str, np.ndarray]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, np.ndarray], dict[str, features.Band | None]]:
    """The kind's feature counts for one window, with the bands from `history` + this window."""
    spec = SPECS[kind]
    actions = features.lol_actions(events, carry) if kind in ("lol", "raid") else None
    current = features.window_histograms(kind, events, carry, actions)
    bands = {
        name: features.band_from_histogram(history.get(name, 0) + current[name], min_sigma)
        for name, min_sigma in spec.bands.items()
    }
    if kind == "lol":
        counts, details, new_carry = features.lol_counts(
            events, carry, bands, far_k=LOL_FAR_K, short_k=LOL_SHORT_K, actions=actions
        )
    elif kind == "hotel":
        counts, details, new_carry = features.hotel_counts(events, carry, bands, band_k=BAND_K["hotel"])
    elif kind == "ad":
        counts, details, new_carry = features.ad_counts(events, carry)
    else:
        counts, details, new_carry = features.raid_counts(
            events, carry, bands, band_k=BAND_K["raid"], speed_k=RAID_SPEED_K, actions=actions
        )
    return counts, details, new_carry, current, bands


def _halving(minutes: np.ndarray, half_life: float) -> np.ndarray:
    """0.5^(minutes / half_life); 0 where there is no previous window (NaN)."""
    return np.where(np.isnan(minutes), 0.0, 0.5 ** (np.maximum(np.nan_to_num(minutes), 0.0) / half_life))


class _Window:
    """One window's scoring in progress: the accounts' previous state and the per-feature results."""

    def __init__(self, accounts: pd.Index, previous: pd.DataFrame, window_ts: float) -> None:
        self.previous = previous
        self.window_ts = window_ts
        minutes = (window_ts - previous["window_ts"].to_numpy(float)) / 60.0 if "window_ts" in previous else None
        self.minutes = np.full(len(accounts), np.nan) if minutes is None else minutes
        self.new = pd.DataFrame(index=accounts)
        self.scores = pd.DataFrame(index=accounts)
        self.recent = np.zeros(len(accounts), dtype=bool)
        # only the few accounts with a reason get a list (100,000 empty lists cost ~0.3 s a window)
        self.reasons: dict[int, list[dict[str, Any]]] = {}

    def column(self, name: str) -> np.ndarray:
        """A previous state column (0 for new accounts)."""
        if name not in self.previous:
            return np.zeros(len(self.new))
        return self.previous[name].fillna(0.0).to_numpy(float)

    def decay(self, half_life: float) -> np.ndarray:
        return _halving(self.minutes, half_life)

    def add(self, name: str, label: str, score: np.ndarray, value: np.ndarray, population: np.ndarray) -> None:
        self.scores[name] = score
        for i in np.flatnonzero(score >= REASON_SCORE):
            ratio = value[i] / population[i] if population[i] > 0 else None
            self.reasons.setdefault(int(i), []).append({
                "feature": name, "label": label, "score": round(float(score[i]), 2), "value": float(value[i]),
                "population": float(population[i]), "ratio": None if ratio is None else round(float(ratio), 2),
            })  # fmt: skip


def _score_rate(window: _Window, spec: KindSpec, rate: Rate, counts: pd.DataFrame, groups: np.ndarray) -> None:
    """Steps 1-2 of the module docstring for one rate feature."""
    hits = counts[rate.hits].to_numpy(float)
    trials = counts[rate.trials].to_numpy(float)
    decay = window.decay(POPULATION_HALF_LIFE_MIN)
    k = window.column(f"k_{rate.name}") * decay + hits
    n = window.column(f"n_{rate.name}") * decay + trials
    _, p0 = rate_score(k, n, groups, spec.pool_cap)
    names = [f"cusum_{rate.name}_{m:g}" for m in ALTERNATIVES]
    before = np.column_stack([window.column(name) for name in names])
    cusum = cusum_update(before, hits, trials, p0, window.decay(FORGET_HALF_LIFE_MIN))
    window.new[f"k_{rate.name}"], window.new[f"n_{rate.name}"] = k, n
    for position, name in enumerate(names):
        window.new[name] = cusum[:, position]
    score = cusum.max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(n > 0, k / n, 0.0)
    window.add(rate.name, rate.label, score, value, p0)
    window.recent |= (hits > 0) & (score >= REASON_SCORE)


def _score_rule(window: _Window, rule: Rule, counts: pd.DataFrame) -> None:
    now = counts[rule.count].to_numpy(float)
    decayed = window.column(f"rule_{rule.name}") * window.decay(RULE_HALF_LIFE_MIN) + now
    window.new[f"rule_{rule.name}"] = decayed
    violated = (now > 0) | (decayed >= 0.5)
    window.add(rule.name, rule.label, np.where(violated, RULE_SCORE, 0.0), decayed, np.zeros(len(now)))
    window.recent |= now > 0


def _score_regularity(window: _Window, reg: Regularity, counts: pd.DataFrame, groups: np.ndarray) -> None:
    sums = {}
    for part in ("n", "sum", "sum2"):
        name = f"reg_{reg.prefix}_{part}"
        decayed = window.column(name) * window.decay(REGULARITY_HALF_LIFE_MIN)
        sums[part] = window.new[name] = decayed + counts[f"{reg.prefix}_{part}"].to_numpy(float)
    score, spread, median = regularity_score(sums["n"], sums["sum"], sums["sum2"], groups)
    window.add(reg.name, reg.label, score, spread, median)
    window.recent |= (counts[f"{reg.prefix}_n"].to_numpy() > 0) & (score >= REASON_SCORE)


def _burstiness(window: _Window, name: str, counts: pd.DataFrame) -> np.ndarray:
    """Reported, not scored: the Fano factor of the account's `name` hits per active minute, decayed like
    the evidence (FORGET_HALF_LIFE_MIN)."""
    hits = counts[name].to_numpy(float)
    decay = window.decay(FORGET_HALF_LIFE_MIN)
    sums = []
    for part, now in (("minutes", np.ones(len(hits))), ("sum", hits), ("sum2", hits**2)):
        column = f"burst_{name}_{part}"
        window.new[column] = window.column(column) * decay + now
        sums.append(window.new[column].to_numpy(float))
    return fano_factor(*sums)


def score_window(
    kind: str,
    events: pd.DataFrame,
    *,
    state: pd.DataFrame,
    history: dict[str, np.ndarray],
    window_ts: float,
    threshold: float,
) -> Scored:
    """Score every account active in one window (see the module docstring). Pure: same inputs, same result.

    `state` is every tracked account's state before the window (indexed by account, as `events`'
    account column; empty at the start), as the previous call's `Scored.state` left it."""
    spec = SPECS[kind]
    accounts = pd.Index(events["account"].unique(), name="account")
    previous = state.reindex(accounts)
    carry_columns = [c for c in features.CARRY[kind] if c in state.columns]
    # raid's room count needs every member's last status; the other kinds only the active accounts'
    carry = (state if kind == "raid" else previous)[carry_columns]
    counts, details, new_carry, current, bands = window_counts(kind, events, carry, history)
    counts = counts.reindex(accounts)
    if spec.group:
        groups = events.groupby("account")[spec.group].last().reindex(accounts).astype(str).to_numpy()
    else:
        groups = np.full(len(accounts), kind, dtype=object)

    window = _Window(accounts, previous, window_ts)
    for rate in spec.rates:
        _score_rate(window, spec, rate, counts, groups)
    for rule in spec.rules:
        _score_rule(window, rule, counts)
    for reg in spec.regularities:
        _score_regularity(window, reg, counts, groups)
    bursts = {f"{name}_burstiness": _burstiness(window, name, counts) for name in spec.bursts}
    before = previous["last_hit_ts"].to_numpy(float) if "last_hit_ts" in previous else np.full(len(accounts), np.nan)
    last_hit = np.where(window.recent, window_ts, before)
    window.new["last_hit_ts"] = last_hit
    window.new["window_ts"] = window_ts

    result = counts.join(window.new[[c for c in window.new.columns if c.startswith(("k_", "n_", "last_hit"))]])
    for column, values in bursts.items():
        result[column] = values
    result["group"] = groups
    result["score"] = window.scores.max(axis=1).fillna(0.0).to_numpy() if len(window.scores.columns) else 0.0
    for name in window.scores.columns:
        result[f"score_{name}"] = window.scores[name]
    reasons = np.empty(len(accounts), dtype=object)
    reasons[:] = [[]] * len(accounts)  # one shared empty list: read-only for accounts without a reason
    for i, found in window.reasons.items():
        reasons[i] = sorted(found, key=lambda item: -item["score"])
    result["reasons"] = reasons
    with np.errstate(invalid="ignore"):
        fresh = (window_ts - last_hit) <= RECENT_SECONDS
    result["flagged"] = (result["score"].to_numpy() >= threshold) & fresh
    result["window_ts"] = window_ts

    carried = new_carry.reindex(accounts)
    rows = pd.concat([carried[[c for c in carried.columns if c in features.CARRY[kind]]], window.new], axis=1)
    return Scored(
        accounts=result,
        state=advance_state(kind, state, rows, window_ts),
        histograms=current,
        bands=bands,
        details=details,
    )


def advance_state(kind: str, state: pd.DataFrame, rows: pd.DataFrame, window_ts: float) -> pd.DataFrame:
    """`state` with the active accounts' rows replaced by `rows`, less the accounts idle for longer than
    STATE_TTL_MIN (unless a lasting carried value keeps them)."""
    kept = state[~state.index.isin(rows.index)] if len(state) else state
    if len(kept):
        idle = (window_ts - kept["window_ts"].to_numpy(float)) > STATE_TTL_MIN * 60.0
        lasting = [c for c in features.LASTING_CARRY.get(kind, ()) if c in kept.columns]
        if lasting:
            idle &= ~(kept[lasting].fillna(0.0).to_numpy(float) != 0).any(axis=1)
        kept = kept[~idle]
    if not len(kept):
        return rows.copy()
    return pd.concat([kept, rows])
