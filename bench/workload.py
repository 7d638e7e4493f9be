"""Records for the benchmark: accounts shaped like sample_data/accounts.csv (about 230 bytes of JSON each).

Deterministic (seeded), keyed by `accountnumber` (the demo schema's alternate key), with no lookups: the
benchmark measures the write path, not the ordering of parents and children (the demo shows that).
"""

from __future__ import annotations

import random
from typing import Any

CITIES = ["Seattle", "Redmond", "Lisbon", "Zürich", "São Paulo", "Osaka", "Nairobi", "Kraków", "Montréal", "Oslo"]
WORDS = ["Contoso", "Fabrikam", "Northwind", "Tailspin", "Litware", "Adventure", "Wingtip", "Proseware", "Alpine"]


def accounts(count: int, *, prefix: str, seed: int = 20250301) -> list[dict[str, Any]]:
    """`count` account records of the message contract; keys `<prefix>-0000001`..."""
    rng = random.Random(seed)
    return [_account(n, prefix, rng) for n in range(1, count + 1)]


def _account(n: int, prefix: str, rng: random.Random) -> dict[str, Any]:
    return {
        "table": "account",
        "key": {"accountnumber": f"{prefix}-{n:07d}"},
        "data": {
            "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n}",
            "telephone1": f"+1 425 555 {n % 10000:04d}",
            "address1_city": rng.choice(CITIES),
            "numberofemployees": rng.randint(1, 50_000),
            "revenue": round(rng.uniform(10_000, 90_000_000), 2),
            "industrycode": rng.randint(1, 5),
            "creditonhold": rng.random() < 0.1,
        },
        "source_id": f"bench:{n}",
    }
