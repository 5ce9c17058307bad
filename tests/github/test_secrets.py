"""integrations/secrets.py: what is masked, and the logging filter on records that propagate to handlers."""

from __future__ import annotations

import io
import logging

import pytest

from integrations import secrets
from integrations.github import GitHubSettings

CLASSIC = "0123456789abcdef0123456789abcdef01234567"


def test_registered_secrets_and_token_shapes_are_masked() -> None:
    secrets.register("s3cr3t-block-value")
    secrets.register("short")  # too short to mask safely: ordinary words would vanish
    text = ("a s3cr3t-block-value b ghp_abcdefghijklmnopqrstu c github_pat_11AAAAAAAAAA_bbbbbbbbbbbb "
            "d gho_1234567890ab e https://x-access-token:tok3n@github.example/api short")
    assert secrets.mask(text) == "a *** b *** c *** d *** e https://x-access-token:***@github.example/api short"


def test_classic_pats_are_masked_only_in_text_from_github() -> None:
    assert secrets.mask(f"head {CLASSIC}") == f"head {CLASSIC}", "our own output shows commit SHAs"
    assert secrets.mask_untrusted(f"echo {CLASSIC}.") == "echo ***."


def test_settings_register_the_env_token_and_a_url_password() -> None:
    GitHubSettings.from_env({"GITHUB_TOKEN": "plain-token-from-env",
                             "GITHUB_API_URL": "https://user:url-password-1@ghe.example/api/v3"})
    assert secrets.mask("plain-token-from-env url-password-1") == "*** ***"


@pytest.mark.parametrize("logger_name", ["prefect.task_runs", "prefect.flow_runs.child", "some.library"])
def test_the_filter_masks_records_reaching_handlers(logger_name: str) -> None:
    """A child logger's records skip the parents' logger filters, so the filter also sits on their handlers."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    parent = logging.getLogger(logger_name.split(".")[0] if logger_name.startswith("prefect") else "")
    parent.addHandler(handler)
    try:
        secrets.register("token-registered-later")
        logger = logging.getLogger(logger_name)
        logger.setLevel(logging.INFO)
        logger.info("GitHub said %s", "token-registered-later")
        try:
            raise RuntimeError("boom token-registered-later")
        except RuntimeError:
            logger.exception("failed")
    finally:
        parent.removeHandler(handler)
    output = stream.getvalue()
    assert "GitHub said ***" in output and "boom ***" in output
    assert "token-registered-later" not in output
