"""The Gradio web app (``cycletools serve``): every domain on images, video and the browser's camera, plus
the plugin list.

Models are loaded once per domain and shared between requests; a queue bounds how many translations run
at once (one per device by default) and how many may wait. Uploads, images and clips are limited before
any work, clips again while they are decoded, and the disk that uploads and results take together; a job
whose client went away is cancelled. Gradio's uploads and each job's own result files live in the app's
temp folder, which is removed when the app stops. Errors reach the page as one sentence, never
tracebacks or server paths (those go to the log).

One job per module:

- ``ui``: the page and what ``launch`` needs; ``handlers``: what its buttons run.
- ``client_input``: what a client may make the server open (files, images, clips), in one place;
  ``gradio_guards``: where Gradio's own HTTP layer is held to the same rules.
- ``limits`` and ``disk``: the limits, the decoding budget and the disk bound.
- ``jobs``: running jobs and their cancellation; ``messages``: sentences for the page, details for the log.
- ``served`` and ``cards``: what is served, and the text shown about it.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the app must work offline; before Gradio loads

from cycletools.app.jobs import cancel_jobs, stop_jobs, stopping  # noqa: E402
from cycletools.app.limits import ServeLimits  # noqa: E402
from cycletools.app.served import Served  # noqa: E402
from cycletools.app.ui import BuiltApp, build_app, launch_options, theme  # noqa: E402

__all__ = ["BuiltApp", "Served", "ServeLimits", "build_app", "cancel_jobs", "launch_options", "stop_jobs",
           "stopping", "theme"]
