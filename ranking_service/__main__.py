"""``python -m ranking_service [serve|migrate]``."""

from ranking_service.app import create_app, migrate_database
from ranking_service.config import Settings
from shared.web.runner import main

if __name__ == "__main__":
    main(Settings, create_app, migrate_database)
