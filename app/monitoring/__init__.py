"""Monitoring (spec §8, §10): period figures, SLO decisions, alerts and the SLO banner."""
