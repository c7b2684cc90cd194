"""Pagination of API lists: LimitOffsetPagination with bounds.

Unbounded, `?offset=` past a 64-bit integer is a database error (500) and `?limit=` may ask
for every row at once.
"""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_OFFSET = 2**62  # far past any table, still a valid bigint with a limit added


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = 1000

    def get_offset(self, request: Request) -> int:
        return min(int(super().get_offset(request)), MAX_OFFSET)
