"""Stage, the interaction layer: the GUI and the script runner. Depends on Steam."""
