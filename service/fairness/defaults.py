"""The fairness report's defaults, shared by the API's request and ``clv report fairness``;
standard library only, so the CLI's help imports nothing heavy to show them."""

DEFAULT_HORIZON_DAYS = 180
DEFAULT_EPOCHS = 10
