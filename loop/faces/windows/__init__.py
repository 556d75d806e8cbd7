"""The windows: pygame loops that draw state and turn events into core calls."""
