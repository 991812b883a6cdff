from swarmops.cli import main

raise SystemExit(main())
