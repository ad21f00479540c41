"""What pytest collects from ``mmfeat/`` (its doctests) without torch.

The README's test command installs no torch (a CPU build has to come
first, by hand). Without it, a module that imports torch when it is
imported cannot even be collected, so outside CI it is left out and the
tests that need torch skip with the reason. CI installs torch, so there it
must collect.
"""

import importlib.util
import os

collect_ignore = []
if importlib.util.find_spec("torch") is None and not os.environ.get("CI"):
    collect_ignore.append("mmfeat/fusion/_neural_net.py")
