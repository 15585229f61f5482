"""Prefect flows (deadline sweeps, outbox delivery): thin loops over engine commands."""
