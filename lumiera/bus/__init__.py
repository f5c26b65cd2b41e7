"""The message bus: wire codec, the declared message kinds, endpoints and clients."""

DEFAULT_TIMEOUT = 10.0  # seconds a client waits for a reply (lumiera.bus.client)
