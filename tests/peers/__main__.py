import sys

from tests.peers.build import main

sys.exit(main(sys.argv[1:]))
