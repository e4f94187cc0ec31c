import sys

from amqp_lite.cli import main

sys.exit(main())
