"""Use cases of the balance context, shared by the HTTP views and the saga consumer."""
