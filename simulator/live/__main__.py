import sys

from simulator.live.stack import main

sys.exit(main())
