import sys

from fundgoal.cli import main

sys.exit(main())
