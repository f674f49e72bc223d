"""``python -m service.cli`` is ``clv``."""

from service.cli import app

app()
