"""``python -m balance_service [serve|migrate]``."""

from balance_service.app import create_app, migrate_database
from balance_service.config import Settings
from shared.web.runner import main

if __name__ == "__main__":
    main(Settings, create_app, migrate_database)
