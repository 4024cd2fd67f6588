"""The admin fixtures (an account, a signed-in client) for the security tests."""

from tests.web.admin.conftest import admin, anon, cheap_hashing, settings, signed_in

__all__ = ["admin", "anon", "cheap_hashing", "settings", "signed_in"]
