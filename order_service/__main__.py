"""``python -m order_service [serve|migrate]``."""

from order_service.app import create_app, migrate_database
from order_service.config import Settings
from shared.web.runner import main

if __name__ == "__main__":
    main(Settings, create_app, migrate_database)
