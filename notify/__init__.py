"""Alerts that reach people: fault tickets and webhook deliveries from the catalog's event log."""
