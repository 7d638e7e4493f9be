"""Azure Storage queue adapters: clients, producer helper, dead-letter store.

- `adapters.QueueAdapters.from_settings(settings)`: the sync core's queue ports (sender, dead-letter store,
  bulk source, depth) on one QueueServiceClient.
- `producer.RecordProducer` / `producer.send_records`: validate, pack into messages that fit, send.
- `deadletter_store.DeadLetterStore`: put (never expires), list/show/replay/purge for operators.
- `triggers.incoming_message`: a Functions trigger message as the core's IncomingMessage.
- `host_options.read_queue_host_options`: host.json's queue options the handlers agree with.
"""
