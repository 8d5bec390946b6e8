"""The state store: one directory per container under the runtime root, holding ``state.json``
(msgspec-encoded), the exec fifo and the trace journal; per-container file locks outside it."""
