"""Names of every queue the app uses. infra/ creates exactly these (tests compare the two).

Queue names: 3-63 lowercase letters, digits and single hyphens. The host names the poison queue of a
queue-triggered function `<queue>-poison` (Storage Queues extension, QueueProcessor).
"""

RECORDS_QUEUE = "dvsync-records"
"""Records to write; queue-triggered, one message = one record or a list of records."""

RECORDS_POISON_QUEUE = f"{RECORDS_QUEUE}-poison"
"""Where the host moves a records message after maxDequeueCount failed attempts."""

BULK_QUEUE = "dvsync-bulk"
"""High-volume records, drained on a timer and coalesced across messages into full bulk requests."""

DEAD_LETTER_QUEUE = "dvsync-deadletter"
"""Records that can never succeed, with their reason; sent with no expiry; replayable with the CLI."""

ALL_QUEUES = (RECORDS_QUEUE, RECORDS_POISON_QUEUE, BULK_QUEUE, DEAD_LETTER_QUEUE)
