"""The HTTP and websocket edges: translate requests into calls on the
services and results into the contract's bodies. No decisions live here."""
