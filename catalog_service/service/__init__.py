"""Use cases of the catalog, shared by the HTTP views and the saga consumer."""
