"""Names shared across systems."""

# DuckDB allows one writing process per file: every asset that writes the warehouse joins this pool, whose
# limit (dagster.yaml) is 1, so steps of concurrent runs take turns instead of failing on the file lock. With Delta
# tables (MLOPS_TABLE_FORMAT=delta) each commit is atomic on its own; the pool still keeps the read-then-write steps
# (the Scones capture check, a partition's replacement) one at a time, on every host (docs/scale-out.md, Tables).
DUCKDB_POOL = "duckdb_warehouse"

# Alias moves must not interleave (two runs could both see "no champion" and both promote).
PROMOTION_POOL = "model_promotion"

# Tag written on every registered model version: the Dagster run that produced it (serving returns it).
DAGSTER_RUN_TAG = "dagster_run_id"
