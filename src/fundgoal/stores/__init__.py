"""Queries. Every SELECT/INSERT/UPDATE outside ledger.py lives in a store; stores never commit."""
