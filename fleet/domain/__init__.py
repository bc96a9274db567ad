"""Domain layer: the services that change and check the fleet's records; they take a Session, never a request."""
