"""`python -m netjail.settings --check FILE | --schema`."""

from netjail.settings.core import main

raise SystemExit(main())
