"""The outside world: kubectl through `sh`, GitHub through PyGithub, records in the cluster. No Prefect here."""
