"""HTTP side of the catalog: public product routes, admin routes and the internal lookup."""
