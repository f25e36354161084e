"""Service layer: the use cases, shared by HTTP views and Kafka consumers."""
