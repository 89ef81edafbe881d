"""`python -m netjail.settings --check FILE | --schema`."""

from netjail.settings.models import main

raise SystemExit(main())
