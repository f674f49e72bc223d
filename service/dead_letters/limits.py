"""How many dead letters one listing returns at most, for the API and ``clv events
dead-letters list``; standard library only, so the CLI's help imports nothing heavy."""

MAX_LISTED = 1_000
