"""The pure core: plan model and validation, step building, reversal, report rendering.

Nothing in this package imports Prefect or talks to the network, so every rule can be unit-tested in
milliseconds and the CLI preview never pays for Prefect's start-up.
"""
