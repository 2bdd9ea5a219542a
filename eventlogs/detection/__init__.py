"""Behaviour detection on the enriched event logs (issue 11): per-account features for each one-minute
window, a robust score against the population of the same game/room/session, anomaly events with
source `account`, the evaluation against generator ground truth and the training features.

Layout: `features` (pure, vectorised per-window counts), `scoring` (pure: evidence per account, population
comparison, reasons), `services` (database glue: which windows, load, save, anomaly events), `tasks`
(the minute beat task), `evaluation` (in-memory replay against a truth file), `training` (features +
labels for the training dataset), `api`/`admin`.
"""
