import sys

from growthwatch.cli import main

sys.exit(main())
