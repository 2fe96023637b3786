"""One repository per area of the schema; each runs its operations as single
transactions on the shared ``Database`` and reads its SQL from queries/<area>.sql."""

from __future__ import annotations

from ..db import Database
from ..queries import Queries, load


class Repository:
    area = ""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.d = db.dialect
        self.q: Queries = load(self.area, db.dialect)
