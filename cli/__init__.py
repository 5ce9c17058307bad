"""Command-line entry points with the seed's flags; previews never import Prefect."""
