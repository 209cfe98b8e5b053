"""Shared package of the customer-ingest functions: models, configuration, database access."""
