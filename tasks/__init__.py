"""Thin Prefect tasks: each wraps one core or integration call with its retry, timeout and caching policy."""
