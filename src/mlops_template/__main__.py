"""`python -m mlops_template`: the same as the `mlops-template` command."""

import sys

from mlops_template.cli import main

sys.exit(main())
