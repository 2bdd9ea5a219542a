"""`manage.py evaluate_behaviour --kind lol --truth F`: the behaviour scorer against a generator's truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from eventlogs.detection import evaluation, services


class Command(BaseCommand):
    help = (
        "Replay a run's events through the behaviour scorer and print precision, recall, F1, time to "
        "detection (game seconds) per abnormal account and overall, and the false-positive rate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kind", required=True, choices=sorted(services.QUERIES))
        parser.add_argument("--truth", required=True, type=Path, help="the generator's ground-truth CSV")
        parser.add_argument("--events", type=Path, help="NDJSON records (default: the kind's enriched table)")
        parser.add_argument("--threshold", type=float, help="default: EVENTLOG_BEHAVIOUR_THRESHOLD")
        parser.add_argument("--isolation-forest", action="store_true", help="also report an IsolationForest")
        parser.add_argument("--json", action="store_true", help="one JSON object instead of text")

    def handle(self, *args: Any, **opts: Any) -> None:
        kind: str = opts["kind"]
        try:
            truth = evaluation.read_truth(opts["truth"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the truth file: {exc}") from exc
        truth = truth[truth["kind"] == kind] if "kind" in truth else truth
        if opts["events"]:
            try:
                lines = opts["events"].read_text().splitlines()
                frame = evaluation.records_to_frame(kind, (json.loads(line) for line in lines if line.strip()))
            except (OSError, ValueError, KeyError) as exc:
                raise CommandError(f"cannot read the events file: {exc}") from exc
        else:
            frame = self._from_database(kind, list(truth["account"].unique()))
        if frame.empty:
            raise CommandError("no events of the truth file's accounts to evaluate")
        threshold = opts["threshold"] if opts["threshold"] is not None else settings.EVENTLOG_BEHAVIOUR_THRESHOLD
        report = evaluation.evaluate(kind, frame, truth, threshold)
        result: dict[str, Any] = dict(report.summary)
        result["accounts_detail"] = json.loads(report.accounts.to_json(orient="records"))
        if opts["isolation_forest"]:
            flagged = set(report.accounts.loc[report.accounts["flagged"], "account"])
            normal_flagged = report.summary["false_positives"]
            result["side_by_side"] = evaluation.side_by_side(kind, frame, truth, flagged)
            result["side_by_side"]["rules"]["false_positives"] = normal_flagged
        if opts["json"]:
            self.stdout.write(json.dumps(result))
            return
        self._print(result)

    @staticmethod
    def _from_database(kind: str, accounts: list[str]) -> Any:
        from datetime import UTC, datetime

        from eventlogs.models import TABLES

        model: Any = TABLES[kind]
        bounds = model.objects.filter(account__in=accounts).order_by("ts").values_list("ts", flat=True)
        first, last = bounds.first(), bounds.last()
        if first is None or last is None:
            return evaluation.pd.DataFrame()
        end = datetime.fromtimestamp(last.timestamp() + 1, tz=UTC)
        return services.load_events(kind, first, end, accounts)

    def _print(self, result: dict[str, Any]) -> None:
        ttd = result["time_to_detection_s"]
        self.stdout.write(
            f"{result['kind']}: {result['accounts']} accounts, {result['abnormal']} abnormal, threshold "
            f"{result['threshold']:g}\n"
            f"precision {result['precision']:.3f}  recall {result['recall']:.3f}  F1 {result['f1']:.3f}  "
            f"false-positive rate {result['false_positive_rate']:.4f} ({result['false_positives']} normal accounts)\n"
            f"time to detection (game s): median {_s(ttd['median'])}, max {_s(ttd['max'])}"
        )
        for row in result["accounts_detail"]:
            state = "flagged" if row["flagged"] else "MISSED"
            self.stdout.write(
                f"  {row['account']:<24} {row.get('behaviour', '')!s:<18} {state:<8} "
                f"time to detection {_s(row.get('time_to_detection_s'))} s, peak score {row['peak_score'] or 0:.1f}"
            )
        if "side_by_side" in result:
            for name, values in result["side_by_side"].items():
                self.stdout.write(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in values.items()))


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
