"""Run tags shared by the systems and the instance configuration (dagster.yaml)."""

# Runs tagged with the same value of this key run one at a time: dagster.yaml's run coordinator limits each
# value to one run in progress (`applyLimitPerUniqueValue`). Runs executed in-process (the bootstrap) count too,
# since the coordinator counts every started run of the instance.
ONE_AT_A_TIME = "mlops/one_at_a_time"
