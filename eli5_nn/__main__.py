"""``python -m eli5_nn``: see :mod:`eli5_nn.cli`."""

from .cli import main

raise SystemExit(main())
