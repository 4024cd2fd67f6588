"""One validated input model per use case (DESIGN.md): donation, campaign, offline gift and CSV
row, sign-in, donor sign-in link. Web forms, CSV import, the CLI and the services use these, so
every rule about what a person may send exists once.

Rules common to all of them (text.py): lengths equal to the column a value fills, read from
models.py; no NUL or other control characters (line breaks and tabs only in multi-line text);
no Unicode direction overrides or isolates; titles and names with something visible in them;
emails checked and within their column; integers from URLs parsed as ASCII digits and bounded
to their column (numbers.py); amounts through money.parse_amount, the one parser.
"""

from .base import InputError, InputModel

__all__ = ["InputError", "InputModel"]
