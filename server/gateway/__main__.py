"""``python -m server.gateway``: run the Stripe-compatible test gateway (see `runner`)."""

from server.gateway.runner import main

raise SystemExit(main())
