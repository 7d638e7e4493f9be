"""Errors the emulated Dataverse Web API answers, with Dataverse's status codes, error codes and messages.

Every error body is `{"error":{"code":"0x...","message":"..."}}` (Web API error format:
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors).
Codes and message templates come from the Dataverse error code list
(PAD = MicrosoftDocs/powerapps-docs powerapps-docs/developer/data-platform/, includes/data-service-error-codes.md)
unless a comment says otherwise. Where the wire text could not be confirmed, the comment says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Set in emitted hex form; the Web API returns hex codes (compose-http-requests-handle-errors.md).
OBJECT_DOES_NOT_EXIST = "0x80040217"
PRIVILEGE_DENIED = "0x80040220"
DUPLICATE_RECORD = "0x80040237"
DUPLICATE_RECORD_ENTITY_KEY = "0x80060892"
RECORD_WITH_KEY_NOT_FOUND = "0x80060891"
ATTRIBUTE_LENGTH_EXCEEDED = "0x80044331"
ODATA_PAYLOAD_ERROR = "0x80048d19"
RESOURCE_NOT_FOUND = "0x8006088a"
ODATA_URI_ERROR = "0x80060888"
UNEXPECTED = "0x80040216"
CANNOT_ACT_ON_BEHALF = "0x8004A110"
ENTITY_DOES_NOT_SUPPORT_MESSAGE = "0x80040800"  # SdkEntityDoesNotSupportMessage
SDK_MESSAGE_NOT_IMPLEMENTED = "0x80044824"
EXPIRED_VERSION_STAMP = "0x80044352"
INVALID_ARGUMENT = "0x80040203"
# Service protection (PAD/api-limits.md)
THROTTLE_REQUESTS = "0x80072322"
THROTTLE_EXECUTION_TIME = "0x80072321"
THROTTLE_CONCURRENCY = "0x80072326"

# From PAD/webapi/troubleshoot-web-api-client-errors (learn.microsoft.com/troubleshoot/power-platform/power-apps/
# dataverse/web-api-client-errors): payload errors are wrapped like this.
_PAYLOAD_PREFIX = (
    "Error identified in Payload provided by the user for Entity :'{entity_set}', For more information on this "
    "error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : "
)


class DataverseError(Exception):
    """An error response. `annotations` are extra members of the error object (ErrorDetails annotations)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        annotations: Mapping[str, Any] | None = None,
        html: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.annotations = dict(annotations or {})
        self.html = html  # answered by the web front end (IIS/ASP.NET), not by the OData layer

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error.update(self.annotations)
        return {"error": error}


# --- routing and query errors ----------------------------------------------------------------------------------


def resource_not_found(segment: str) -> DataverseError:
    # Troubleshoot Web API client errors: "Resource not found for the segment 'Account'." (404, 0x8006088a)
    return DataverseError(404, RESOURCE_NOT_FOUND, f"Resource not found for the segment '{segment}'.")


def no_route(url: str) -> DataverseError:
    # Troubleshoot Web API client errors: wrong method on a function/action -> 404 with an empty code.
    return DataverseError(404, "", f"No HTTP resource was found that matches the request URI '{url}'.")


def method_not_allowed(method: str) -> DataverseError:
    # compose-http-requests-handle-errors.md: 405 for PATCH/DELETE on a collection. The text is ASP.NET Web API's
    # standard message (not quoted in the Dataverse docs).
    return DataverseError(405, "", f"The requested resource does not support http method '{method}'.")


def property_not_found(prop: str, logical_name: str) -> DataverseError:
    # Troubleshoot Web API client errors: $select of an unknown property -> 400, code 0x0.
    return DataverseError(
        400, "0x0", f"Could not find a property named '{prop}' on type 'Microsoft.Dynamics.CRM.{logical_name}'."
    )


def query_syntax(message: str) -> DataverseError:
    # PAD/webapi/query/filter-rows.md quotes the OData parser's messages, e.g.
    # "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."
    return DataverseError(400, "0x0", message)


def unsupported_query_option(option: str) -> DataverseError:
    """A query option the emulator does not implement (said so plainly; Dataverse itself supports it)."""
    return DataverseError(400, "0x0", f"The query option '{option}' is not supported by the Dataverse emulator.")


def invalid_key(logical_name: str) -> DataverseError:
    # PAD/use-alternate-key-reference-record.md quotes this text; the code is the OData URI error code observed in
    # public clients (not in the docs).
    resource = f"Microsoft.Dynamics.CRM.{logical_name}"
    return DataverseError(
        400,
        ODATA_URI_ERROR,
        f"The key in the request URI is not valid for resource '{resource}'. Ensure that the names and number of "
        f"key properties match the declared or alternate key properties for the resource '{resource}'.",
    )


def dangerous_path(char: str) -> DataverseError:
    # PAD/define-alternate-keys-entity.md: key values containing / < > * % & : \ ? + make GET/PATCH by key fail.
    # Those are ASP.NET's default requestPathInvalidCharacters (< > * % & : \ ?), rejected by the web front end
    # before OData sees the request. Inference: the exact body Dataverse's front end returns is not documented.
    return DataverseError(
        400, "", f"A potentially dangerous Request.Path value was detected from the client ({char}).", html=True
    )


def double_escaping() -> DataverseError:
    # IIS request filtering (allowDoubleEscaping=false) answers 404.11 for '+' in the path. Inference, see above.
    return DataverseError(
        404,
        "",
        "The request filtering module is configured to deny a request that contains a double escape sequence.",
        html=True,
    )


# --- payload and validation errors -----------------------------------------------------------------------------


def payload_error(entity_set: str, inner: str) -> DataverseError:
    return DataverseError(400, ODATA_PAYLOAD_ERROR, _PAYLOAD_PREFIX.format(entity_set=entity_set) + inner)


def invalid_property(entity_set: str, prop: str, logical_name: str) -> DataverseError:
    # Observed current wording (0x80048d19); the 2023 troubleshooting article shows an older variant.
    type_name = f"Microsoft.Dynamics.CRM.{logical_name}"
    return payload_error(
        entity_set,
        f"Microsoft.Crm.CrmException: Invalid property '{prop}' was found in entity '{type_name}'. ---> "
        f"Microsoft.OData.ODataException: The property '{prop}' does not exist on type '{type_name}'. Make sure "
        "to only use property names that are defined by the type or mark the type as open type.",
    )


def undeclared_navigation(entity_set: str, prop: str) -> DataverseError:
    # Troubleshoot Web API client errors: unknown single-valued navigation property in `x@odata.bind`.
    return payload_error(
        entity_set,
        f"Microsoft.OData.ODataException: An undeclared property '{prop}' which only has property annotations in "
        "the payload but no property value was found in the payload. In OData, only declared navigation "
        "properties and declared named streams can be represented as properties without values.",
    )


def cannot_convert_literal(entity_set: str, literal: str, edm_type: str) -> DataverseError:
    # Observed in public code: "Cannot convert the literal 'Charity' to the expected type 'Edm.Int32'."
    return payload_error(
        entity_set,
        f"Microsoft.OData.ODataException: Cannot convert the literal '{literal}' to the expected type '{edm_type}'.",
    )


def cannot_convert_primitive(entity_set: str, edm_type: str) -> DataverseError:
    # OData's message for a JSON value of the wrong kind (e.g. a number for Edm.String).
    return payload_error(
        entity_set,
        f"Microsoft.OData.ODataException: Cannot convert a primitive value to the expected type '{edm_type}'. "
        "See the inner exception for more details.",
    )


def invalid_json(entity_set: str) -> DataverseError:
    return payload_error(
        entity_set, "Microsoft.OData.ODataException: Invalid JSON. The request body is not a JSON object."
    )


def max_length(column: str, logical_name: str, limit: int) -> DataverseError:
    # Verbatim from the documented $batch example (two spaces after "occurred.").
    return DataverseError(
        400,
        ATTRIBUTE_LENGTH_EXCEEDED,
        f"A validation error occurred.  The length of the '{column}' attribute of the '{logical_name}' entity "
        f"exceeded the maximum allowed length of '{limit}'.",
    )


def option_out_of_range(value: object, column: str, logical_name: str, accepted: list[int]) -> DataverseError:
    # Wording as Dataverse answers for an unknown choice value; the code (OutOfRange) is the one commonly observed,
    # not found in the docs read.
    values = ",".join(str(v) for v in accepted)
    return DataverseError(
        400,
        "0x8004431a",
        f"A validation error occurred. The value {value} of '{column}' on record of type '{logical_name}' is "
        f"outside the valid range. Accepted Values: {values}",
    )


def required_missing(column: str, logical_name: str) -> DataverseError:
    # Only SystemRequired columns are enforced by the platform; the exact Dataverse text for a missing one is not
    # documented, so this is the emulator's wording with the InvalidArgument code.
    return DataverseError(
        400, INVALID_ARGUMENT, f"Attribute '{column}' of entity '{logical_name}' is required and cannot be null."
    )


# --- record errors -------------------------------------------------------------------------------------------


def not_found_by_id(logical_name: str, record_id: str, *, code: str = OBJECT_DOES_NOT_EXIST) -> DataverseError:
    # "account With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist"
    # (PAD/webapi/perform-conditional-operations-using-web-api.md shows it with an empty code for If-Match: *).
    return DataverseError(404, code, f"{logical_name} With Id = {record_id} Does Not Exist")


def bind_target_missing(logical_name: str, record_id: str) -> DataverseError:
    # Lookup @odata.bind to a missing row: "<table> With Ids = <id> Do Not Exist" (0x80040217, 404).
    return DataverseError(404, OBJECT_DOES_NOT_EXIST, f"{logical_name} With Ids = {record_id} Do Not Exist")


def key_record_not_found(logical_name: str) -> DataverseError:
    # 0x80060891 as observed in public clients: "A record with the specified key values does not exist in <table>
    # entity". Status 404 like ObjectDoesNotExist (inference).
    return DataverseError(
        404,
        RECORD_WITH_KEY_NOT_FOUND,
        f"A record with the specified key values does not exist in {logical_name} entity",
    )


def already_exists_create_only() -> DataverseError:
    # PAD/webapi/perform-conditional-operations-using-web-api.md (If-None-Match: *), empty code as documented.
    return DataverseError(412, "", "A record with matching key values already exists.")


def etag_mismatch() -> DataverseError:
    # PAD/webapi/perform-conditional-operations-using-web-api.md
    return DataverseError(412, "", "The version of the existing record doesn't match the RowVersion property provided.")


def duplicate_record() -> DataverseError:
    # DuplicateRecord: "Operation failed due to a SQL integrity violation."; 412 per compose-http-requests doc.
    return DataverseError(412, DUPLICATE_RECORD, "Operation failed due to a SQL integrity violation.")


def duplicate_key(values: list[object], key_name: str) -> DataverseError:
    # DuplicateRecordEntityKey as Dataverse words it at runtime (MicrosoftDocs/azure-docs#100518); 412 like other
    # duplicate-record errors (compose-http-requests-handle-errors.md).
    shown = ",".join(str(v) for v in values)
    return DataverseError(
        412,
        DUPLICATE_RECORD_ENTITY_KEY,
        f"A record that has the attribute values {shown} already exists. The entity key {key_name} requires that "
        "this set of attributes contains unique values. Select unique values and try again.",
    )


def unexpected() -> DataverseError:
    # UpsertMultiple create path with the key in both body and @odata.id
    # (microsoft/PowerPlatform-DataverseClient-Python PR #127).
    return DataverseError(400, UNEXPECTED, "An unexpected error occurred.")


def message_not_supported(message: str, logical_name: str) -> DataverseError:
    # SdkEntityDoesNotSupportMessage (0x80040800); text as observed for tables without the message, e.g.
    # "The 'DeleteMultiple' method does not support entities of type 'contact'." Status 400 is an inference.
    return DataverseError(
        400,
        ENTITY_DOES_NOT_SUPPORT_MESSAGE,
        f"The '{message}' method does not support entities of type '{logical_name}'.",
    )


def delete_multiple_not_implemented() -> DataverseError:
    # PAD/bulk-operations.md: DeleteMultiple on a standard table -> "DeleteMultiple has not yet been implemented."
    # The code is not documented; SdkMessageNotImplemented is an inference.
    return DataverseError(400, SDK_MESSAGE_NOT_IMPLEMENTED, "DeleteMultiple has not yet been implemented.")


# --- security errors ---------------------------------------------------------------------------------------


def not_a_member() -> DataverseError:
    # A valid token whose application has no application user in the environment. The message is the one users
    # report (community Q&A); the code is not documented, so it is left empty.
    return DataverseError(403, "", "The user is not a member of the organization.")


def privilege_denied(principal_id: str, privilege: str, logical_name: str | None, caller_id: str) -> DataverseError:
    # PrivilegeDenied (0x80040220, 403). Dataverse's runtime message names the principal and the missing privilege
    # in this shape; the exact text is observed, not documented.
    entity = f" for entity '{logical_name}'" if logical_name else ""
    return DataverseError(
        403,
        PRIVILEGE_DENIED,
        f"Principal user (Id={principal_id}, type=8) is missing {privilege} privilege{entity}. "
        f"context.Caller={caller_id}",
    )


def cannot_act_on_behalf() -> DataverseError:
    # CannotActOnBehalfOfAnotherUser (0x8004A110): "User does not have the privilege to act on behalf another user."
    return DataverseError(403, CANNOT_ACT_ON_BEHALF, "User does not have the privilege to act on behalf another user.")


def caller_not_found(identifier: str) -> DataverseError:
    # Impersonating someone who is not a user of the environment. Not documented; modelled as ObjectDoesNotExist.
    return DataverseError(404, OBJECT_DOES_NOT_EXIST, f"systemuser With Id = {identifier} Does Not Exist")


# --- $batch ------------------------------------------------------------------------------------------------------


def batch_too_many_parts(limit: int) -> DataverseError:
    # OData batch reader's message as Dataverse returns it (MicrosoftDocs/powerapps-docs#1890 quotes it with an
    # older limit of 250; PAD/webapi/execute-batch-operations-using-web-api.md documents 1000).
    return DataverseError(
        400,
        "0x0",
        f"The current batch message contains too many parts. Only batch messages with a maximum number of "
        f"'{limit}' query operations, including changeset operations, are allowed.",
    )


def content_id_missing(ref: str) -> DataverseError:
    # PAD/webapi/execute-batch-operations-using-web-api.md: forward/unknown Content-ID reference.
    return DataverseError(400, "0x0", f"Content-ID Reference: '{ref}' does not exist in the batch context.")


def batch_format(message: str) -> DataverseError:
    return DataverseError(400, "0x0", message)


# --- change tracking ----------------------------------------------------------------------------------------------


def change_tracking_option(option: str) -> DataverseError:
    # PAD/use-change-tracking-synchronize-data-external-systems.md (text verbatim, with its escaped quotes).
    return DataverseError(
        400, "0x0", f'The \\"${option}\\" query parameter isn\'t supported when Change Tracking is enabled.'
    )


def expired_version_stamp() -> DataverseError:
    # ExpiredVersionStamp (0x80044352); status 400 is an inference.
    return DataverseError(
        400, EXPIRED_VERSION_STAMP, "Version stamp associated with the client has expired. Please perform a full sync."
    )


def invalid_delta_token(token: str) -> DataverseError:
    return DataverseError(400, INVALID_ARGUMENT, f"The delta token '{token}' is not valid.")


# --- service protection -----------------------------------------------------------------------------------------

THROTTLE_MESSAGES = {
    # PAD/api-limits.md, verbatim (including the two spaces before "milliseconds").
    THROTTLE_REQUESTS: "Number of requests exceeded the limit of {requests} over time window of {window} seconds.",
    THROTTLE_EXECUTION_TIME: (
        "Combined execution time of incoming requests exceeded limit of {execution_ms:,}  milliseconds over time "
        "window of {window} seconds. Decrease number of concurrent requests or reduce the duration of requests and "
        "try again later."
    ),
    THROTTLE_CONCURRENCY: "Number of concurrent requests exceeded the limit of {concurrency}.",
}


def throttled(
    code: str, retry_after_seconds: int, *, requests: int, execution_ms: int, concurrency: int, window: int
) -> DataverseError:
    message = THROTTLE_MESSAGES[code].format(
        requests=requests, execution_ms=execution_ms, concurrency=concurrency, window=window
    )
    return DataverseError(429, code, message, headers={"Retry-After": str(retry_after_seconds)})


def service_unavailable(status: int) -> DataverseError:
    # Gateway errors come from Dataverse's front end; their bodies are not documented. Kept in the Web API shape so
    # clients exercise the same parsing path.
    phrase = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Error")
    return DataverseError(status, "", f"{phrase}. The service is temporarily unavailable; try again later.")
