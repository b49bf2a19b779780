"""Titanic feature-store system (group `titanic`)."""
import dagster as dg

defs = dg.Definitions()
