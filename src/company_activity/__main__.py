import sys

from company_activity.cli import main

sys.exit(main())
