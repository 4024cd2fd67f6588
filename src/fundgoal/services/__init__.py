"""Use cases: validate, call stores and the ledger, write the audit log. Services never commit."""
