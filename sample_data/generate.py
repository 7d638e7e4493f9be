"""Generate the bundled sample data set (deterministic: same files on every run).

    .venv/bin/python -m sample_data.generate            # rewrite the files next to this script
    .venv/bin/python -m sample_data.generate --check    # exit 1 if the committed files differ

Files (see sample_data/README.md): accounts.csv, contacts.jsonl (valid by the contract; a few are refused by
Dataverse or lack their parent, on purpose), invalid_messages.jsonl (raw queue messages that must each end as a
dead-letter entry with a specific reason, beside valid records that land).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = 20250301
ACCOUNTS = 1200
CONTACTS = 2400
CITIES = ["Seattle", "Redmond", "Lisbon", "Zürich", "São Paulo", "Osaka", "Nairobi", "Kraków", "Montréal", "Oslo"]
WORDS = ["Contoso", "Fabrikam", "Northwind", "Tailspin", "Litware", "Adventure", "Wingtip", "Proseware", "Alpine"]
SUFFIXES = ["Ltd", "GmbH", "S.A.", "K.K.", "Inc.", "& Sons", "Trading", "Labs", "O'Brien & Co"]
FIRST = ["Ann", "Bruno", "Chen", "Dana", "Émile", "Fatima", "Gunnar", "Hiro", "Ines", "José", "Kwame", "Łukasz"]
LAST = ["Lee", "Silva", "Müller", "Okafor", "Tanaka", "Nowak", "Dubois", "García", "Smith", "Johansson"]
MISSING_PARENT = "ACC-99999"  # never created: these contacts end as missing_parent after the retries


def account_number(n: int) -> str:
    return f"ACC-{n:05d}"


def accounts(rng: random.Random) -> Iterator[dict[str, str]]:
    for n in range(1, ACCOUNTS + 1):
        name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(SUFFIXES)} {n}"
        industry = str(rng.randint(1, 5))
        if n % 400 == 0:
            name = "Overlong name " + "x" * 190  # 204 characters: Dataverse refuses (MaxLength 160)
        if n % 500 == 250:
            industry = "99"  # not an option of industrycode: Dataverse refuses
        parent = ""
        if n > 10 and rng.random() < 0.15:
            # mostly an earlier account; sometimes a later one, so the parent may arrive in a later message
            parent = account_number(rng.randint(1, n - 1) if rng.random() < 0.8 else rng.randint(n + 1, ACCOUNTS))
        yield {
            "accountnumber": account_number(n),
            "name": name,
            "telephone1": f"+1 425 555 {n:04d}",
            "address1_city": rng.choice(CITIES),
            "numberofemployees:int": str(rng.randint(1, 50_000)),
            "revenue:number": f"{rng.randint(10_000, 90_000_000)}.{rng.randint(0, 99):02d}",
            "industrycode:int": industry,
            "creditonhold:bool": rng.choice(["true", "false"]),
            "parentaccountid@account.accountnumber": parent,
        }


def contacts(rng: random.Random) -> Iterator[dict[str, Any]]:
    for n in range(1, CONTACTS + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}.{n}@example.com"
        parent = MISSING_PARENT if n % 600 == 0 else account_number(rng.randint(1, ACCOUNTS))
        record: dict[str, Any] = {
            "table": "contact",
            "key": {"emailaddress1": email},
            "data": {"firstname": first, "lastname": last, "jobtitle": rng.choice(["Buyer", "CFO", "Engineer"])},
            "lookups": {"parentcustomerid_account": {"table": "account", "key": {"accountnumber": parent}}},
            "source_id": f"crm-contact-{n}",
            "sequence": 1,
        }
        yield record
        if n % 100 == 0:  # a later change of the same contact: the highest sequence wins when coalesced
            yield {**record, "data": {**record["data"], "jobtitle": "Head of Purchasing"}, "sequence": 2}


def invalid_messages() -> Iterator[dict[str, Any]]:
    """Raw message bodies and what each must become. `valid` records in the same message must still land."""
    good = {"table": "account", "key": {"accountnumber": "ACC-INV-01"}, "data": {"name": "Valid neighbour"}}

    def envelope(*records: Any) -> str:
        return json.dumps({"schema": "dataverse-sync/v1", "records": list(records)})

    yield {"name": "not JSON", "body": "{'table': 'account'", "expect": ["invalid_json"], "valid": 0}
    yield {"name": "a bare JSON array", "body": json.dumps([good]), "expect": ["not_a_message"], "valid": 0}
    yield {"name": "unknown schema version", "body": '{"schema":"dataverse-sync/v9","records":[]}',
           "expect": ["unsupported_schema"], "valid": 0}  # fmt: skip
    yield {"name": "empty message", "body": "", "expect": ["empty_body"], "valid": 0}
    yield {"name": "double base64", "body": "eyJ0YWJsZSI6ImFjY291bnQiLCJrZXkiOnsiYWNjb3VudG51bWJlciI6IkEifX0=",
           "expect": ["double_encoded"], "valid": 0}  # fmt: skip
    yield {"name": "plain text where base64 is expected", "body": json.dumps(good), "raw": True,
           "expect": ["queue_encoding"], "valid": 0}  # fmt: skip
    yield {
        "name": "unknown environment and unknown table beside a valid record",
        "body": envelope(good, {**good, "environment": "northwind"}, {"table": "lead", "key": {"leadid": "x"}}),
        "expect": ["unknown_environment", "unknown_table"],
        "valid": 1,
    }
    yield {
        "name": "contract violations beside a valid record",
        "body": envelope(
            {"table": "account", "data": {"name": "no key"}},
            {"table": "Account", "key": {"accountnumber": "X"}},
            {"table": "account", "key": {"name": "Contoso"}},
            {"table": "account", "key": {"accountnumber": "Y"}, "colour": "red"},
            {**good, "key": {"accountnumber": "ACC-INV-02"}},
        ),
        "expect": ["key_required", "schema_violation", "not_an_alternate_key", "schema_violation"],
        "valid": 1,
    }
    yield {
        "name": "malicious values beside a valid record",
        "body": '{"schema":"dataverse-sync/v1","records":['
        '{"table":"account","key":{"accountnumber":"M-1"},"data":{"numberofemployees":1' + "0" * 400 + "}},"
        '{"table":"account","key":{"accountnumber":"M-2"},"data":{"revenue":1e999}},'
        '{"table":"account","key":{"accountnumber":"M-3"},"data":{"name":"nul\\u0000byte"}},'
        '{"table":"account","key":{"accountnumber":"M-4"},"data":{"name":"a","name":"b"}},'
        '{"table":"account","key":{"accountnumber":"\\ud800"}},'
        '{"table":"account","key":{"accountnumber":"M-6"},"data":{"x":' + "[" * 300 + "]" * 300 + "}},"
        '{"table":"account","key":{"accountnumber":"ACC-INV-03"},"data":{"name":"\' or 1 eq 1 --"}}]}',
        "expect": ["number_out_of_range", "number_out_of_range", "invalid_text", "duplicate_member", "invalid_text",
                   "schema_violation"],
        "valid": 1,
    }  # fmt: skip
    yield {
        "name": "a record too large for a queue message beside a valid record",
        "body": envelope({"table": "account", "key": {"accountnumber": "BIG"}, "data": {"description": "x" * 46_100}},
                         {**good, "key": {"accountnumber": "ACC-INV-04"}}),
        "expect": ["record_too_large"],
        "valid": 1,
    }  # fmt: skip


def render() -> dict[str, str]:
    rng = random.Random(SEED)  # noqa: S311 - sample data, not security
    buffer = io.StringIO()
    rows = list(accounts(rng))
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return {
        "accounts.csv": buffer.getvalue(),
        "contacts.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in contacts(rng)),
        "invalid_messages.jsonl": "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in invalid_messages()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m sample_data.generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
