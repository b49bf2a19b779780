"""One partition per weekly snapshot file; the sensor adds a key when a new file lands."""

import dagster as dg

snapshot_partitions = dg.DynamicPartitionsDefinition(name="pistachio_snapshots")
