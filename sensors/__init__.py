"""Jobs, schedules and sensors: what makes each system's assets materialize on their own."""
