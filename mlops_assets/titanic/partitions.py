"""One partition per day: the synthetic passenger of that day and its batch prediction."""

import dagster as dg

from mlops_assets.titanic.constants import PARTITIONS_START

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START)
