"""The store: session files and their journal. Knows formats, not windows."""
