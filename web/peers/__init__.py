"""Site-to-site: how one site talks to the others (transport), how it proves and checks who is
talking (auth), the endpoints peers call (internal_api), and whether each peer answers (status)."""
