"""Start the rasa-sdk action server on the configured address (make run, the tests, the images).

One entry point for both runtimes: scripts/action_server_app.py knows how to start rasa-sdk 3.6
(Python 3.10, .venv) and the newest rasa-sdk (Python 3.12, the `app` image).
"""
from __future__ import annotations

from scripts.action_server_app import main

if __name__ == "__main__":
    main()
