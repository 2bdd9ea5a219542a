"""Scoring the enriched tables minute by minute, and turning flagged accounts into anomaly events.

Each beat run, per kind:
1. the windows due: one-minute windows of event time after the kind's last scored window, complete
   once the kind's newest event is WINDOW_LATENESS past the window's end (or the stream has been quiet
   for STREAM_IDLE — the last minutes of a finished run);
2. each due window, oldest first, in one transaction: its events (one COPY), the kind's state after the
   previous window (one row, ScoringState), the band history (the previous windows' histograms), then
   `scoring.score_window` over the whole minute at once; written together: the window rows that carry
   information (AccountWindow: a hit or a score of REASON_SCORE or more — a quiet minute has no row),
   the notable accounts' latest state (AccountState), the new ScoringState, the ScoredWindow row and
   the anomaly events, so a window is scored exactly once and a crashed run leaves nothing half-done;
3. a flagged account opens or extends the (account, kind, "behaviour") event with its evidence; an
   account with an open event that is no longer flagged (or no longer active) counts as clean, and the
   event closes after ANOMALY_CLEAN_MINUTES clean windows (anomaly.events rules).
"""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.db.models.functions import TruncMinute
from pyarrow import feather

from anomaly import events as anomaly_events
from anomaly.models import AnomalyEvent, EventStatus, Source

from . import evaluation, features, scoring
from .models import AccountState, AccountWindow, ScoredWindow, ScoringState

logger = logging.getLogger(__name__)

WINDOW = timedelta(minutes=1)
WINDOW_LATENESS = timedelta(seconds=30)
STREAM_IDLE = timedelta(minutes=2)
# Windows one run scores at most, and the time after which it starts no new one (a backlog is caught up
# over the following runs): a window of 100,000 active accounts takes 2.6-3.3 s on the shared 2-core box
# (docs/BENCHMARKS.md), so a run ends inside the task's 50 s soft limit.
MAX_WINDOWS_PER_RUN = 20
RUN_BUDGET_S = 35.0
EVIDENCE_ITEMS = 20
METHOD = "behaviour"

# kind -> (table, SELECT list producing the canonical columns of `features`, their names, pandas dtypes)
QUERIES = {
    "lol": ("eventlogs_lolevent",
            "account, date_part('epoch', ts), ingame_seconds, method, x, y, inputkey, status, buy_item",
            ["account", "ts", "game_s", "method", "x", "y", "key", "status", "buy_item"]),
    "hotel": ("eventlogs_hotelevent", "account, date_part('epoch', ts), method, status",
              ["account", "ts", "method", "status"]),
    "ad": ("eventlogs_adevent", "account, date_part('epoch', ts), user_click::int", ["account", "ts", "click"]),
    "raid": ("eventlogs_raidevent", ("account, session_id::text, date_part('epoch', ts), gametime_seconds, "
             "boss_end_time, method, x, y, status, success::int"),
             ["account", "session", "ts", "game_s", "end_s", "method", "x", "y", "status", "success"]),
}  # fmt: skip
# Booleans are read as 0/1 (`::int`): COPY writes a boolean as t/f, which the float columns cannot hold.
TEXT_COLUMNS = {"account", "method", "key", "session"}
# What a quiet minute's timeline and training row hold: the window counts SQL rebuilds exactly from the
# enriched table. A hit the table counts by itself (lol's odd keys, dead actions, purchases beyond the
# limit) does not need a stored row; the other hits (a jump: it needs the bands) always get one, so a
# quiet minute's other hit counts are 0. `moves` counts every /move; the scorer's counts leave out an
# account's very first move, which has nothing to be judged against.
LOL_ODD_KEY = Q(status=0) & ~Q(inputkey="") & ~Q(inputkey__iregex=rf"^({'|'.join(sorted(features.LOL_NORMAL_KEYS))})$")
QUIET_COUNTS: dict[str, dict[str, Any]] = {
    "lol": {"events": Count("pk"), "moves": Count("pk", filter=Q(method="/move")),
            "keys_alive": Count("pk", filter=Q(status=0) & ~Q(inputkey="")),
            "odd_keys": Count("pk", filter=LOL_ODD_KEY),
            "dead_events": Count("pk", filter=Q(status=1)),
            "dead_actions": Count("pk", filter=Q(status=1, method__in=features.LOL_ACTIONS)),
            "purchases": Count("pk", filter=Q(method="/getItem")),
            "purchases_over": Count("pk", filter=Q(method="/getItem", buy_item__gt=features.LOL_ITEM_LIMIT))},
    "hotel": {"events": Count("pk"), "bookings": Count("pk", filter=Q(method__startswith="/buy/places/"))},
    "ad": {"events": Count("pk"), "clicks": Count("pk", filter=Q(user_click=True))},
    "raid": {"events": Count("pk"), "moves": Count("pk", filter=Q(method="/move"))},
}  # fmt: skip


def threshold() -> float:
    return float(settings.EVENTLOG_BEHAVIOUR_THRESHOLD)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def load_events(kind: str, start: datetime, end: datetime, accounts: list[str] | None = None) -> pd.DataFrame:
    """The kind's events with start <= ts < end as canonical columns. PostgreSQL: one COPY to CSV read
    by pandas in C (400,000 rows: ~1 s; fetching them as Python tuples took ~3 s)."""
    table, select, columns = QUERIES[kind]
    sql = f"SELECT {select} FROM {table} WHERE ts >= %s AND ts < %s"  # noqa: S608 - constant identifiers
    params: list[Any] = [start, end]
    if connection.vendor == "postgresql":
        if accounts is not None:
            sql += " AND account = ANY(%s)"
            params.append(accounts)
        buffer = io.StringIO()
        with connection.cursor() as cursor:
            query = cursor.mogrify(sql, params).decode()
            cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", buffer)
        buffer.seek(0)
        numeric = [c for c in columns if c not in TEXT_COLUMNS]
        frame = pd.read_csv(buffer, names=columns, header=None, keep_default_na=False,
                            dtype={c: (object if c in TEXT_COLUMNS else "float64") for c in columns},
                            na_values={c: [""] for c in numeric})  # fmt: skip
    else:
        sql = sql.replace("date_part('epoch', ts)", "CAST(strftime('%%s', ts) AS REAL)")
        sql = sql.replace("::text", "").replace("::int", "")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            frame = pd.DataFrame(cursor.fetchall(), columns=columns)
        if accounts is not None:
            frame = frame[frame["account"].isin(accounts)].reset_index(drop=True)
        for column in columns:
            if column not in TEXT_COLUMNS:
                frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("status", "success"):
        if column in frame:
            frame[column] = frame[column].astype(int)
    if "click" in frame:
        frame["click"] = frame["click"].astype(str).str.lower().isin({"t", "true", "1", "1.0"})
    return frame


def windows_due(kind: str, now: datetime | None = None) -> list[datetime]:
    """Complete, unscored windows of the kind after its last scored one, oldest first."""
    now = now or datetime.now(tz=UTC)
    model = _table_model(kind)
    latest = model.objects.aggregate(ts=Max("ts"), received=Max("received_at"))
    if latest["ts"] is None:
        return []
    end = latest["ts"] - WINDOW_LATENESS
    if latest["received"] is not None and latest["received"] <= now - STREAM_IDLE:
        end = latest["ts"] + WINDOW
    last = ScoredWindow.objects.filter(kind=kind).aggregate(window=Max("window_start"))["window"]
    start = last + WINDOW if last else None
    rows = model.objects.filter(ts__lt=end.replace(second=0, microsecond=0))
    if start is not None:
        rows = rows.filter(ts__gte=start)
    minutes = rows.annotate(minute=TruncMinute("ts")).values_list("minute", flat=True).distinct().order_by("minute")
    return list(minutes[:MAX_WINDOWS_PER_RUN])


def _table_model(kind: str) -> Any:
    from eventlogs.models import TABLES

    return TABLES[kind]


def band_history(kind: str, window: datetime) -> dict[str, np.ndarray]:
    """Sum of the previous BAND_HISTORY_WINDOWS windows' histograms (sparse {bin: count} in JSON)."""
    size = len(features.LOG_BIN_EDGES) - 1
    totals: dict[str, np.ndarray] = {}
    rows = ScoredWindow.objects.filter(
        kind=kind, window_start__lt=window, window_start__gte=window - evaluation.BAND_HISTORY_WINDOWS * WINDOW
    ).values_list("histograms", flat=True)
    for histograms in rows:
        for name, sparse in histograms.items():
            dense = totals.setdefault(name, np.zeros(size, dtype=np.int64))
            if sparse:
                bins = np.fromiter((int(b) for b in sparse), dtype=np.int64)
                dense[bins] += np.fromiter(sparse.values(), dtype=np.int64)
    return totals


def load_state(kind: str) -> tuple[pd.DataFrame, datetime | None]:
    """The kind's state after its last scored window (indexed by account) and that window's start."""
    row = ScoringState.objects.filter(kind=kind).values_list("data", "window_start").first()
    if row is None:
        return pd.DataFrame(), None
    table = feather.read_table(pa.BufferReader(bytes(row[0])))
    return table.to_pandas().set_index("account"), row[1]


def save_state(kind: str, window: datetime, state: pd.DataFrame) -> None:
    """Replace the kind's state (one Feather/LZ4 row: 100,000 accounts x 25 columns is a few MB)."""
    sink = pa.BufferOutputStream()
    frame = state.rename_axis("account").reset_index()
    frame["account"] = frame["account"].astype(str)
    feather.write_feather(frame, sink, compression="lz4")
    ScoringState.objects.update_or_create(
        kind=kind, defaults={"window_start": window, "accounts": len(state), "data": sink.getvalue().to_pybytes()}
    )


def _evidence(kind: str, details: pd.DataFrame, flagged: pd.Index) -> dict[Any, dict[str, Any]]:
    """Per flagged account: the window's jumps and odd keys (lol) or the rows that fired (other kinds)."""
    evidence: dict[Any, dict[str, Any]] = {account: {} for account in flagged}
    rows = details[details["account"].isin(flagged)]
    for account, group in rows.groupby("account", sort=False):
        if kind == "lol":
            jumps, odd = group[group["jump"].astype(bool)], group[group["odd_key"].astype(bool)]
            evidence[account] = {
                "jumps": [
                    {"at": _iso(r.ts), "game_s": float(r.game_s), "from": [_num(r.prev_x), _num(r.prev_y)],
                     "to": [_num(r.x), _num(r.y)], "distance": round(float(r.dist), 1),
                     "seconds": round(float(r.dt_wall), 3), "speed_game": round(float(r.speed_game), 1),
                     "speed_wall": round(float(r.speed_wall), 1)}
                    for r in jumps.head(EVIDENCE_ITEMS).itertuples()
                ],
                "odd_keys": [{"at": _iso(r.ts), "game_s": float(r.game_s), "key": r.key}
                             for r in odd.head(EVIDENCE_ITEMS).itertuples()],
            }  # fmt: skip
        else:
            columns = [c for c in group.columns
                       if c in {"ts", "method", "click_to_book", "session", "x", "y", "duplicate", "prev_x", "prev_y",
                                "dist", "speed_game", "jump"}]  # fmt: skip
            evidence[account] = {"rows": orjson.loads(group[columns].head(EVIDENCE_ITEMS).to_json(orient="records"))}
    return evidence


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(float(ts), tz=UTC).isoformat(timespec="milliseconds")


def _num(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def score_window(kind: str, window: datetime) -> ScoredWindow | None:
    """Score one window of one kind (see the module docstring); None if it was scored already."""
    began = time.perf_counter()
    with transaction.atomic():
        if ScoredWindow.objects.filter(kind=kind, window_start=window).exists():
            return None
        state, after = load_state(kind)
        if after is not None and after >= window:
            raise ValueError(f"{kind} window {window.isoformat()} is not after the scored {after.isoformat()}")
        events = load_events(kind, window, window + WINDOW)
        # integer account codes while scoring (pandas string keys cost ~5x more per sort and groupby): the
        # state's accounts take codes 0..n-1, the window's new accounts the next ones
        names = state.index.append(pd.Index(events["account"].unique()).difference(state.index))
        events = events.assign(account=names.get_indexer(events["account"]))
        state.index = pd.RangeIndex(len(state))
        scored = scoring.score_window(
            kind, events, state=state, history=band_history(kind, window), window_ts=_epoch(window),
            threshold=threshold(),
        )  # fmt: skip
        for frame in (scored.accounts, scored.state):
            frame.index = names[frame.index.to_numpy(int)]
        scored.details["account"] = names[scored.details["account"].to_numpy(int)]
        result = scored.accounts
        flagged = result.index[result["flagged"].to_numpy(bool)]
        evidence = _evidence(kind, scored.details, flagged)
        _save_windows(kind, window, result, evidence)
        _save_findings(kind, window, result)
        save_state(kind, window, scored.state)
        record = ScoredWindow.objects.create(
            kind=kind,
            window_start=window,
            accounts=len(result),
            flagged=len(flagged),
            events=len(events),
            histograms={name: {str(i): int(c) for i, c in zip(np.flatnonzero(h), h[h > 0], strict=True)}
                        for name, h in scored.histograms.items()},
            bands={name: (vars(band) if band else None) for name, band in scored.bands.items()},
            duration_ms=0.0,
        )  # fmt: skip
        _observe(kind, window, result, evidence)
        record.duration_ms = (time.perf_counter() - began) * 1000
        record.save(update_fields=["duration_ms"])
    if len(flagged):
        logger.info("%s window %s: %d of %d accounts flagged", kind, window.isoformat(), len(flagged), len(result))
    return record


def _window_features(result: pd.DataFrame) -> pd.DataFrame:
    """The columns a window row keeps: the window's counts and per-feature scores."""
    skip = {"reasons", "flagged", "group", "window_ts", "score"}
    return result[[c for c in result.columns if c not in skip and not c.startswith(("k_", "n_", "last_hit"))]].astype(
        float
    )


def informative(kind: str, result: pd.DataFrame) -> np.ndarray:
    """The account-windows worth a stored row: a score of REASON_SCORE or more, flagged, or a hit that the
    enriched table cannot count by itself (QUIET_COUNTS rebuilds the others)."""
    hits = [c for c in scoring.hit_columns(kind) if c not in QUIET_COUNTS[kind]]
    found = (result[hits].to_numpy(float) > 0).any(axis=1) if hits else np.zeros(len(result), dtype=bool)
    return found | (result["score"].to_numpy() >= scoring.REASON_SCORE) | result["flagged"].to_numpy(bool)


def _save_windows(kind: str, window: datetime, result: pd.DataFrame, evidence: dict[Any, dict[str, Any]]) -> None:
    """AccountWindow rows of the account-windows that carry information (see the model)."""
    rows = result[informative(kind, result)]
    if rows.empty:
        return
    columns = ["kind", "account", "window_start", "score", "flagged", "features", "reasons", "evidence"]
    values = pd.DataFrame({
        "kind": kind, "account": rows.index.astype(str), "window_start": window,
        "score": rows["score"].astype(float).round(4).to_numpy(), "flagged": rows["flagged"].to_numpy(bool),
        "features": _window_features(rows).to_json(orient="records", lines=True, double_precision=6).splitlines(),
        "reasons": [orjson.dumps(r).decode() for r in rows["reasons"]],
        "evidence": [orjson.dumps(evidence.get(a, {})).decode() for a in rows.index],
    })  # fmt: skip
    if connection.vendor == "postgresql":
        buffer = io.StringIO()
        values.to_csv(buffer, header=False, index=False, na_rep="")
        buffer.seek(0)
        with connection.cursor() as cursor:
            cursor.copy_expert(
                f"COPY {AccountWindow._meta.db_table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer
            )
        return
    AccountWindow.objects.bulk_create(
        AccountWindow(kind=kind, account=r.account, window_start=window, score=r.score, flagged=r.flagged,
                      features=orjson.loads(r.features), reasons=orjson.loads(r.reasons),
                      evidence=orjson.loads(r.evidence))
        for r in values.itertuples()
    )  # fmt: skip


def _save_findings(kind: str, window: datetime, result: pd.DataFrame) -> None:
    """AccountState rows of the accounts that score REASON_SCORE or more (or are flagged), and of the
    active accounts whose row still shows such a score (they fall back to their real one)."""
    notable = (result["score"].to_numpy() >= scoring.REASON_SCORE) | result["flagged"].to_numpy(bool)
    shown = AccountState.objects.filter(kind=kind).filter(Q(score__gte=scoring.REASON_SCORE) | Q(flagged=True))
    rows = result[notable | result.index.isin(list(shown.values_list("account", flat=True)))]
    if rows.empty:
        return
    accounts = [str(a) for a in rows.index]
    first = dict(
        AccountState.objects.filter(kind=kind, account__in=accounts)
        .exclude(first_flagged_at=None)
        .values_list("account", "first_flagged_at")
    )
    AccountState.objects.bulk_create(
        [AccountState(kind=kind, account=account, group=str(row.group), window_start=window,
                      score=round(float(row.score), 4), flagged=bool(row.flagged), reasons=row.reasons,
                      first_flagged_at=first.get(account) or (window if row.flagged else None))
         for account, row in zip(accounts, rows.itertuples(), strict=True)],
        update_conflicts=True, unique_fields=["kind", "account"],
        update_fields=["group", "window_start", "score", "flagged", "reasons", "first_flagged_at"],
    )  # fmt: skip


def _observe(kind: str, window: datetime, result: pd.DataFrame, evidence: dict[Any, dict[str, Any]]) -> int:
    """Flagged accounts fire; accounts with an unresolved event that are not flagged now are clean."""
    open_subjects = set(
        AnomalyEvent.objects.filter(source=Source.ACCOUNT, metric=kind, method=METHOD)
        .exclude(status=EventStatus.RESOLVED)
        .values_list("subject", flat=True)
    )
    flagged = result[result["flagged"].to_numpy(bool)]
    observations = [
        anomaly_events.Observation(
            subject=str(account), metric=kind, method=METHOD, fired=True, score=float(row.score),
            evidence={"window": window.isoformat(), "score": round(float(row.score), 2), "reasons": row.reasons,
                      **evidence.get(account, {})},
        )
        for account, row in zip(flagged.index, flagged.itertuples(), strict=True)
    ]  # fmt: skip
    fired = {str(a) for a in flagged.index}
    observations += [
        anomaly_events.Observation(subject=s, metric=kind, method=METHOD, fired=False) for s in open_subjects - fired
    ]
    if not observations:
        return 0
    return anomaly_events.observe_many(source=Source.ACCOUNT, at=window, observations=observations)


def quiet_windows(kind: str, start: datetime, end: datetime, account: str | None = None) -> pd.DataFrame:
    """The scored minutes in [start, end) in which an account was active but has no AccountWindow row
    (score below REASON_SCORE, no hit the table cannot count): account, window, and the QUIET_COUNTS of its
    events (the kind's other hit counts are 0 by definition; the score is not stored: below REASON_SCORE)."""
    rows = _table_model(kind).objects.filter(ts__gte=start, ts__lt=end)
    stored = AccountWindow.objects.filter(kind=kind, window_start__gte=start, window_start__lt=end)
    if account is not None:
        rows, stored = rows.filter(account=account), stored.filter(account=account)
    counts = rows.annotate(window=TruncMinute("ts")).values("account", "window").annotate(**QUIET_COUNTS[kind])
    frame = pd.DataFrame(list(counts), columns=["account", "window", *QUIET_COUNTS[kind]])
    scored = ScoredWindow.objects.filter(kind=kind, window_start__gte=start, window_start__lt=end)
    frame["window"] = pd.to_datetime(frame["window"], utc=True)
    frame = frame[frame["window"].isin(pd.to_datetime(list(scored.values_list("window_start", flat=True)), utc=True))]
    kept = pd.DataFrame(list(stored.values_list("account", "window_start")), columns=["account", "window"])
    kept["window"] = pd.to_datetime(kept["window"], utc=True)
    frame = frame.merge(kept.assign(stored=True), on=["account", "window"], how="left")
    frame = frame[frame["stored"].isna()].drop(columns="stored")
    for hit in scoring.hit_columns(kind):
        if hit not in frame:
            frame[hit] = 0
    return frame.sort_values(["window", "account"]).reset_index(drop=True)


def timeline(kind: str, account: str, limit: int) -> list[dict[str, Any]]:
    """The account's latest `limit` scored minutes, oldest first: the stored windows as they were scored,
    and the quiet minutes between them (`quiet`: true; counts from the enriched table, hit counts 0,
    score null — it was below REASON_SCORE and is not kept)."""
    stored = AccountWindow.objects.filter(kind=kind, account=account).order_by("-window_start")[:limit]
    rows: list[dict[str, Any]] = [
        {"window": w.window_start, "quiet": False, "score": w.score, "flagged": w.flagged, "features": w.features,
         "reasons": w.reasons, "evidence": w.evidence}
        for w in stored
    ]  # fmt: skip
    last = ScoredWindow.objects.filter(kind=kind).aggregate(window=Max("window_start"))["window"]
    if last is not None:
        start: datetime = rows[-1]["window"] if len(rows) == limit else datetime(1970, 1, 1, tzinfo=UTC)
        quiet = quiet_windows(kind, start, last + WINDOW, account)
        counts = [c for c in quiet.columns if c not in {"account", "window"}]
        rows += [{"window": w.to_pydatetime(), "quiet": True, "score": None, "flagged": False,
                  "features": dict(zip(counts, map(float, values), strict=True)), "reasons": [], "evidence": {}}
                 for w, values in zip(quiet["window"], quiet[counts].to_numpy(), strict=True)]  # fmt: skip
    rows.sort(key=lambda r: r["window"])
    return rows[-limit:]


def score_new_windows(kinds: list[str] | None = None, now: datetime | None = None) -> int:
    """Every due window of every kind (at most MAX_WINDOWS_PER_RUN per kind, none started after
    RUN_BUDGET_S); returns windows scored."""
    began = time.monotonic()
    done = 0
    for kind in kinds or list(QUERIES):
        for window in windows_due(kind, now):
            if time.monotonic() - began > RUN_BUDGET_S:
                return done
            if score_window(kind, window) is not None:
                done += 1
    return done
