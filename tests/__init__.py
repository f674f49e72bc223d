import os

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 in their environment, and rich's
# console (built when service.cli.common is first imported) keeps a width found there for good:
# the CLI tests that set COLUMNS for a wide table would read tables cut to 80 columns.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)
