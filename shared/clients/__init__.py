"""HTTP clients of the platform's services, shared by the services that call them."""
