"""HTTP: routes, thin views and the pydantic request/response models."""
