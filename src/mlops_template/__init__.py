"""Instructor tools of the mlops-template: check, diff and compare team repositories.

`mlops-template check|diff|similar|activity REPO...` re-renders each team's reference project
from the answers its `.cruft.json` recorded, at the template commit it recorded, and compares
the team's repository with it. `docs/instructors.md` explains the commands and their tables.
"""

__version__ = "0.1.0"
