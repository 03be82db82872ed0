from khospec.cli import main

raise SystemExit(main())
