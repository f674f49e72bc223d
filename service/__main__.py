"""``python -m service`` is ``clv``."""

from service.cli import app

app()
