"""``python -m gateway``."""

from gateway.app import create_app
from gateway.config import Settings
from shared.web.runner import main

if __name__ == "__main__":
    main(Settings, create_app)
