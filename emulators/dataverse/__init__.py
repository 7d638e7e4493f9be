"""Emulator of the Microsoft Dataverse Web API (see docs/dataverse-emulator.md)."""

from emulators.dataverse.config import EmulatorConfig
from emulators.dataverse.demo import add_demo_orgs
from emulators.dataverse.emulator import DataverseEmulator
from emulators.dataverse.faults import FaultKind, FaultRule
from emulators.dataverse.limits import LatencyModel, ServiceProtectionLimits
from emulators.dataverse.org import Org
from emulators.dataverse.schema import Schema
from emulators.dataverse.security import Access, AppUser, Role, User

__all__ = [
    "Access",
    "AppUser",
    "DataverseEmulator",
    "EmulatorConfig",
    "FaultKind",
    "FaultRule",
    "LatencyModel",
    "Org",
    "Role",
    "Schema",
    "ServiceProtectionLimits",
    "User",
    "add_demo_orgs",
]
