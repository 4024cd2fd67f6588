"""fundgoal: a self-hosted fundraising goal tracker."""

__version__ = "0.1.0"
