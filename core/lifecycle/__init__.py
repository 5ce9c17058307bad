"""The lifecycles, each written once as an action over small interfaces (after Helm's pkg/action): Apply,
Rollback and Scale. The Prefect flows and the CLI only choose the interfaces' implementations."""
