"""The three Prefect flows; each reads like the list of its tasks."""
