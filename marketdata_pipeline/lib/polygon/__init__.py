"""Polygon.io / Massive REST client, payload normalisation, request planner, rate budget."""
