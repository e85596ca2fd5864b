import sys

from sloanalysis.cli.main import main

sys.exit(main())
