"""Path convertors: `{name:id}` is a row id, ASCII digits bounded to the id column.

Starlette's `int` convertor matches any run of digits and calls int() on it: 5,000 digits
raise ValueError (a 500), and 99999999999 overflows PostgreSQL's 32-bit INTEGER (a 500). This
one matches 1-10 digits only (longer runs are simply no route: 404) and turns an id past the
column's range into 0, which no row has (404 from the handler's own lookup).
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

from ..inputs.numbers import parse_id


class IdConvertor(Convertor[int]):
    regex = "[0-9]{1,10}"

    def convert(self, value: str) -> int:
        return parse_id(value) or 0

    def to_string(self, value: int) -> str:
        return str(int(value))


register_url_convertor("id", IdConvertor())
