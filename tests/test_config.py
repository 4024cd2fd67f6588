from __future__ import annotations

import pytest

from fundgoal.config import ConfigError, Secret, load_settings
from tests.logcheck import register

register("sk_test_supersecret", "whsec_hush")  # ("k" * 40 is not distinctive enough)


def test_defaults_are_the_embedded_setup() -> None:
    s = load_settings({})
    assert s.database_url == "sqlite:///fundgoal.db"
    assert s.test_mode_payments
    assert not s.production


def test_secrets_never_print() -> None:
    s = load_settings(
        {
            "FUNDGOAL_SECRET_KEY": "k" * 40,
            "STRIPE_SECRET_KEY": "sk_test_supersecret",
            "STRIPE_WEBHOOK_SECRET": "whsec_hush",
        }
    )
    text = repr(s) + str(s)
    assert "sk_test_supersecret" not in text
    assert "whsec_hush" not in text
    assert "k" * 40 not in text
    assert s.stripe_secret_key.reveal() == "sk_test_supersecret"
    assert not s.test_mode_payments
    assert str(Secret("x")) == "Secret('**********')"


def test_production_names_each_missing_piece() -> None:
    s = load_settings({"FUNDGOAL_ENV": "production"})
    problems = s.production_problems()
    assert "FUNDGOAL_SECRET_KEY is not set" in problems
    assert "STRIPE_SECRET_KEY is not set" in problems
    assert "STRIPE_WEBHOOK_SECRET is not set" in problems
    assert not s.test_mode_payments  # production never falls back to test payments


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FUNDGOAL_ENV": "staging"}, "FUNDGOAL_ENV"),
        ({"FUNDGOAL_DATABASE_URL": "mysql://x"}, "FUNDGOAL_DATABASE_URL"),
        ({"FUNDGOAL_PUBLIC_URL": "ftp://x"}, "FUNDGOAL_PUBLIC_URL"),
        ({"STRIPE_API_BASE": "nope"}, "STRIPE_API_BASE"),
        ({"FUNDGOAL_WIDGET_CACHE_SECONDS": "soon"}, "FUNDGOAL_WIDGET_CACHE_SECONDS"),
        ({"FUNDGOAL_DB_POOL_SIZE": "0"}, "FUNDGOAL_DB_POOL_SIZE"),
        ({"FUNDGOAL_DB_MAX_OVERFLOW": "-1"}, "FUNDGOAL_DB_MAX_OVERFLOW"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_bare_postgresql_urls_use_psycopg() -> None:
    s = load_settings({"FUNDGOAL_DATABASE_URL": "postgresql://u@h/db"})
    assert s.database_url == "postgresql+psycopg://u@h/db"


def test_pool_sizing_per_worker() -> None:
    assert (load_settings({}).db_pool_size, load_settings({}).db_max_overflow) == (5, 10)
    s = load_settings({"FUNDGOAL_DB_POOL_SIZE": "8", "FUNDGOAL_DB_MAX_OVERFLOW": "0"})
    assert (s.db_pool_size, s.db_max_overflow) == (8, 0)
