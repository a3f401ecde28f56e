"""Read a customer's user list from a CSV file, checked cell by cell, for `flitstack sandbox --users`.

Columns (header row, any order): `name` and `email` (required), `active_flag` and `is_admin`
(optional: true/false, yes/no, 1/0; empty means active and not admin) and `id` (optional: the user's
Pipedrive id, a positive whole number; missing ids are numbered after the highest one given).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from flitstack_dagster.core.errors import UserError

REQUIRED = ("name", "email")
OPTIONAL = ("active_flag", "is_admin", "id")
TRUE_WORDS = {"true", "yes", "y", "1"}
FALSE_WORDS = {"false", "no", "n", "0"}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
FIRST_ID = 1


class UsersFileError(UserError):
    """The users file cannot be used as it is; the message names the file, row and column."""


def read_users_csv(path: Path) -> list[dict]:
    """One dict per row in the User shape (id, name, email, active_flag, is_admin)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise UsersFileError(f"{path}: no such file; give the path of the users CSV.") from None
    except (UnicodeDecodeError, csv.Error, OSError) as e:
        raise UsersFileError(f"{path}: cannot be read as a UTF-8 CSV file ({e}); save it as UTF-8 CSV and try again.") from None
    if not rows or not any(c.strip() for c in rows[0]):
        raise UsersFileError(f"{path.name}: the file is empty; it needs a header row with {', '.join(REQUIRED)}.")
    columns = _columns(path, rows[0])
    users = [_user(path, n, columns, row) for n, row in enumerate(rows[1:], start=1) if any(c.strip() for c in row)]
    if not users:
        raise UsersFileError(f"{path.name}: no user rows under the header; add one row per user.")
    if not any(u["is_admin"] for u in users):
        raise UsersFileError(f"{path.name}: no row has is_admin set to true; mark the user whose API token the "
                             "migration uses as admin (column is_admin).")
    _check_unique(path, users, "email")
    _check_unique(path, users, "id")
    _number(users)
    return [{k: v for k, v in u.items() if not k.startswith("_")} for u in users]


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    names = [h.strip().lower() for h in header]
    for i, name in enumerate(names):
        if name not in REQUIRED + OPTIONAL:
            raise UsersFileError(f"{path.name}: header row, column {i + 1}: unknown column {header[i]!r}; "
                                 f"the columns are {', '.join(REQUIRED + OPTIONAL)}.")
        if names.index(name) != i:
            raise UsersFileError(f"{path.name}: header row, column {i + 1}: column {name!r} appears twice.")
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise UsersFileError(f"{path.name}: the header has no {' and no '.join(repr(c) for c in missing)} column; "
                             f"add it (the columns are {', '.join(REQUIRED + OPTIONAL)}).")
    return {name: i for i, name in enumerate(names)}


def _user(path: Path, n: int, columns: dict[str, int], row: list[str]) -> dict:
    def cell(col: str) -> str:
        i = columns.get(col)
        return row[i].strip() if i is not None and i < len(row) else ""

    def bad(col: str, what: str) -> UsersFileError:
        return UsersFileError(f"{path.name}: row {n}, column {col}: {what}; fix it and run the command again.")

    if len(row) > len(columns):
        raise bad(f"{len(columns) + 1}", f"the row has {len(row)} values but the header names {len(columns)} columns")
    name, email = cell("name"), cell("email")
    if not name:
        raise bad("name", "the name is empty")
    if not EMAIL.fullmatch(email):
        raise bad("email", f"{email!r} is not an email address" if email else "the email is empty")
    user = {"name": name, "email": email, "_row": n,
            "active_flag": _flag(cell("active_flag"), True, lambda: bad("active_flag", "expected true or false")),
            "is_admin": _flag(cell("is_admin"), False, lambda: bad("is_admin", "expected true or false"))}
    raw_id = cell("id")
    if raw_id:
        if not raw_id.isdigit() or int(raw_id) < 1:
            raise bad("id", f"{raw_id!r} is not a positive whole number")
        user["id"] = int(raw_id)
    return user


def _flag(text: str, default: bool, bad) -> bool:
    word = text.lower()
    if not word:
        return default
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise bad()


def _check_unique(path: Path, users: list[dict], col: str) -> None:
    seen: dict = {}
    for u in users:
        value = u.get(col)
        key = value.lower() if isinstance(value, str) else value
        if value is None:
            continue
        if key in seen:
            raise UsersFileError(f"{path.name}: row {u['_row']}, column {col}: {value!r} is already on row "
                                 f"{seen[key]}; each user needs their own {col}.")
        seen[key] = u["_row"]


def _number(users: list[dict]) -> None:
    """Users without an id get the next ones after the highest given."""
    nxt = max((u["id"] for u in users if "id" in u), default=FIRST_ID - 1) + 1
    for u in users:
        if "id" not in u:
            u["id"] = nxt
            nxt += 1
