"""The message bus: wire codec, the declared message kinds, endpoints and clients."""
