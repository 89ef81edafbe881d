"""`python -m netjail.settings --check FILE | --schema`."""

from netjail.settings.tool import main

raise SystemExit(main())
