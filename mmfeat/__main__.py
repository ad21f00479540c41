"""``python -m mmfeat`` runs the command line."""

import sys

from mmfeat.cli import main

sys.exit(main())
