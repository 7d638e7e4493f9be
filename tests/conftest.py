"""Fixtures shared by every test folder: Azurite and the local certificate authority.

Folder-specific fixtures (the Entra ID/Key Vault/Dataverse emulators, the local cloud) live in the conftest.py
of their folder, built from the same code `make run` uses (emulators/).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.azurite import Azurite
from emulators.tls import LocalCA


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One in-memory Azurite per test session; tests use their own queue names to stay independent."""
    with Azurite() as running:
        yield running


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA.create(Path(tmp_path_factory.mktemp("local-ca")))
