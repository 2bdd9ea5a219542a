"""monitoring's logic: sampling, storage, snapshots, queries, retention and host anomaly detection."""
