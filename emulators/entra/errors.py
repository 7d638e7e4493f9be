"""Entra ID's token-endpoint error responses, in the documented shape.

Shape (https://learn.microsoft.com/entra/identity-platform/reference-error-codes#handling-error-codes-in-your-application):
`{"error", "error_description": "AADSTS<code>: <message>\\r\\nTrace ID: ..\\r\\nCorrelation ID: ..\\r\\nTimestamp: ..",
"error_codes": [<code>], "timestamp", "trace_id", "correlation_id", "error_uri"}`.
Codes and texts follow the same page's table; where the table gives only a name, the message is what Entra ID
returns in practice (quoted in MSAL and Azure SDK issues), and where neither is known it is marked below.
`invalid_client` errors are HTTP 401, all others 400, as Entra ID answers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

CERTIFICATE_DOCS = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"


@dataclass(frozen=True)
class EntraError(Exception):
    """An error Entra ID's STS returns; `message` never contains a secret or a token."""

    error: str  # OAuth 2.0 error (RFC 6749 §5.2): invalid_request, invalid_client, unauthorized_client, ...
    code: int  # the AADSTS number
    message: str

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400

    def body(self, correlation_id: str, now: dt.datetime | None = None) -> dict[str, Any]:
        when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {when}"
            ),
            "error_codes": [self.code],
            "timestamp": when,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def tenant_not_found(tenant: str) -> EntraError:
    return EntraError(
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the "
        "correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    )


def missing_parameter(name: str) -> EntraError:
    return EntraError("invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def unsupported_grant_type(grant_type: str) -> EntraError:
    return EntraError("unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'.")


def missing_client_credential() -> EntraError:
    return EntraError(
        "invalid_request",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )


def app_not_in_directory(client_id: str, tenant_name: str) -> EntraError:
    # Unknown app, and multi-tenant app without a service principal (no consent) in this tenant alike.
    return EntraError(
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant_name}'. This can happen if "
        "the application has not been installed by the administrator of the tenant or consented to by any user in "
        "the tenant. You may have sent your authentication request to the wrong tenant.",
    )


def invalid_scope_for_client_credentials(scope: str) -> EntraError:
    return EntraError(
        "invalid_scope",
        1002012,
        f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with "
        "/.default suffixed to the resource identifier (application ID URI).",
    )


def multiple_resources(scope: str) -> EntraError:
    return EntraError(
        "invalid_scope",
        70011,
        f"The provided value for the input parameter 'scope' isn't valid. The scope {scope} isn't valid: it names "
        "more than one resource.",
    )


def resource_not_found(resource: str, tenant_name: str) -> EntraError:
    return EntraError(
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named {tenant_name}. This can happen "
        "if the application has not been installed by the administrator of the tenant or consented to by any user "
        "in the tenant. You might have sent your authentication request to the wrong tenant.",
    )


def invalid_client_secret(client_id: str) -> EntraError:
    return EntraError(
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not "
        f"the client secret ID, for a secret added to app '{client_id}'.",
    )


def expired_client_secret(client_id: str) -> EntraError:
    return EntraError(
        "invalid_client",
        7000222,
        f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys "
        "for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: "
        "https://aka.ms/certCreds.",
    )


def assertion_signature_invalid(reason: str, thumbprint_hex: str, client_id: str) -> EntraError:
    return EntraError(
        "invalid_client",
        700027,
        f"Client assertion failed signature validation. (Reason - {reason}, Thumbprint of key used by client: "
        f"'{thumbprint_hex}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured "
        f"keys for app Id '{client_id}'.)",
    )


def assertion_malformed(detail: str) -> EntraError:
    # AADSTS50027 InvalidJwtToken: "unexpected audience", "token format isn't proper", ... (reference table).
    return EntraError("invalid_request", 50027, f"JWT token is invalid or malformed: {detail}.")


def assertion_subject_mismatch() -> EntraError:
    return EntraError("invalid_client", 50048, "Subject mismatches Issuer claim in the client assertion.")


def assertion_client_mismatch() -> EntraError:
    return EntraError(
        "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter."
    )


def assertion_time_range(now: dt.datetime, valid_from: dt.datetime, expires: dt.datetime) -> EntraError:
    # Text as Entra ID returns it (quoted verbatim in AzureAD/microsoft-authentication-library-for-dotnet#4951).
    def fmt(moment: dt.datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")

    return EntraError(
        "invalid_client",
        700024,
        f"Client assertion is not within its valid time range. Current time: {fmt(now)}, assertion valid from "
        f"{fmt(valid_from)}, expiry time of assertion {fmt(expires)}. Review the documentation at {CERTIFICATE_DOCS} .",
    )


def assertion_replayed() -> EntraError:
    # Entra ID documents no dedicated code for a reused `jti`; AADSTS50013 is its generic "assertion is invalid".
    return EntraError(
        "invalid_client",
        50013,
        "Assertion is invalid: the client assertion with this 'jti' was already used. Create a new assertion for "
        "every token request.",
    )
