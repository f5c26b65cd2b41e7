"""Steam, the processing layer: the session (command dispatcher) and the player.

Depends on Vault only.
"""
