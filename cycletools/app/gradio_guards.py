"""Where the web app has to correct Gradio's own HTTP layer (routes the app's handlers never see).

- ``RefuseOddRequests``: an address with a NUL byte gets 400 (Gradio answered some with 500), and the
  reverse proxy (``/proxy=``, only for Spaces loaded with ``gr.load``, which the app never does) 403.
- ``remove_refused_uploads``: Gradio writes an upload's body to its cache before it checks the name
  (``..`` is refused) and keeps it when the upload fails, until the app exits; the body is now removed
  when the upload is refused or the client drops the connection. One upload request may hold at most
  ``disk.MAX_FILES_PER_UPLOAD`` files (Gradio took 1,000).
- ``refuse_foreign_files``: a request's file (Gradio's FileData) must name a file this server received;
  Gradio otherwise downloads a URL given as its path (the server connected to any host named) or
  answers with an empty error; it now answers one sentence and nothing is fetched or opened.
- ``keep_gradio_files_in``: Gradio makes a ``vibe_edit_history`` folder in the temp folder it read at
  import time; it now goes into the app's own temp folder, removed at exit.
- ``check_example_choices``, ``check_payload_shapes``, ``check_value_counts``, ``check_choices``: requests
  Gradio answered with an empty error or with an echo of what was sent (an example that does not exist,
  a value of the wrong shape, too few values, a value that is not one of a picker's choices) get one
  sentence.

These reach into Gradio's internals by name, checked when the app starts; the web app's tests cover
each of them, so an upgrade of Gradio that moves them fails there rather than silently.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path

from cycletools.app.client_input import FOREIGN_FILE, is_received
from cycletools.app.disk import MAX_FILES_PER_UPLOAD

_parsers: ContextVar[list | None] = ContextVar("cycletools_upload_parsers", default=None)
_received = [set()]  # the serving app's accepted uploads (Blocks.upload_file_set)


class RefuseOddRequests:
    """ASGI middleware: 400 for a NUL byte in the address, 403 for Gradio's reverse proxy."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
            address = raw + b"?" + scope.get("query_string", b"")
            status = 400 if b"\x00" in address or b"%00" in address else 403 if b"/proxy=" in raw else 0
            if status:
                body = b"Bad request.\n" if status == 400 else b"This app proxies nothing.\n"
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def remove_refused_uploads(received: set) -> None:
    """Make a failed upload remove what it wrote (``received``: the uploads Gradio accepted, kept)."""
    import gradio_client.utils as client_utils
    from gradio import route_utils, routes

    _received[0] = received
    parser_class = route_utils.GradioMultiPartParser
    if getattr(routes.upload_fn, "_cycletools", False):
        return
    original_init, original_upload = parser_class.__init__, routes.upload_fn

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.max_files = min(self.max_files, MAX_FILES_PER_UPLOAD)  # the page sends one; Gradio takes 1,000
        made = _parsers.get()
        if made is not None:
            made.append(self)

    async def upload_fn(request, upload_dir, *args, **kwargs):
        made: list = []
        token = _parsers.set(made)
        try:
            return await original_upload(request, upload_dir, *args, **kwargs)
        except BaseException:
            for parser in made:
                _remove_bodies(parser, Path(upload_dir), _received[0],
                               client_utils.strip_invalid_filename_characters)
            raise
        finally:
            _parsers.reset(token)

    upload_fn._cycletools = True
    parser_class.__init__ = init
    routes.upload_fn = upload_fn


def _remove_bodies(parser, upload_dir: Path, received: set, clean_name) -> None:
    """The temp files of a failed upload, and what it had already moved into the cache."""
    for file in parser._files_to_close_on_error:
        file.close()
        Path(file.name).unlink(missing_ok=True)
    for _, item in parser.items:
        if not hasattr(item, "sha"):
            continue  # a form field, not a file
        folder = upload_dir / item.sha.hexdigest()
        moved = folder / clean_name(Path(item.filename or "").name) if item.filename else None
        if moved is not None and moved.is_file() and str(moved) not in received:
            moved.unlink(missing_ok=True)
        try:
            folder.rmdir()  # only if empty: an identical upload may share it
        except OSError:
            pass


def keep_gradio_files_in(folder: Path) -> None:
    """Point the temp folder Gradio's routes read at import time to ``folder``."""
    from gradio import route_utils, routes

    for module in (routes, route_utils):
        if hasattr(module, "DEFAULT_TEMP_DIR"):
            module.DEFAULT_TEMP_DIR = str(folder)


def refuse_foreign_files(received: list[set], root: Path) -> None:
    """Before Gradio touches a request's files, each must be one this server received, inside ``root``;
    a URL, another server path, a link pointing out or a non-string is refused."""
    import gradio as gr
    import gradio_client.utils as client_utils
    from gradio import processing_utils

    _received_sets[0] = (received, root)
    original = processing_utils.async_move_files_to_cache
    if getattr(original, "_cycletools", False):
        return

    async def move_files_to_cache(data, block, postprocess=False, check_in_upload_folder=False, *args, **kwargs):
        if check_in_upload_folder and not postprocess:
            takes_files = isinstance(block, (gr.Image, gr.Video, gr.File, gr.Audio))
            if takes_files and (isinstance(data, str) or (isinstance(data, dict) and "path" in data
                                                          and not client_utils.is_file_obj_with_meta(data))):
                raise gr.Error(FOREIGN_FILE, print_exception=False)  # a bare path, not an uploaded file

            def check(file: dict) -> dict:
                if not is_received(file.get("path"), *_received_sets[0]):
                    raise gr.Error(FOREIGN_FILE, print_exception=False)
                return file
            client_utils.traverse(data, check, client_utils.is_file_obj_with_meta)
        return await original(data, block, postprocess, check_in_upload_folder, *args, **kwargs)

    move_files_to_cache._cycletools = True
    processing_utils.async_move_files_to_cache = move_files_to_cache


_received_sets: list = [([], Path("/nonexistent"))]


def check_example_choices(blocks, refuse) -> None:
    """``gr.Examples`` loads an example by its index; for an index it does not have (out of range, not a whole
    number, none) Gradio fails with an empty error. Each examples table of ``blocks`` answers that with
    ``refuse(message)`` (an exception to raise: a sentence for the page) before anything is loaded."""
    import gradio as gr

    for block in blocks.blocks.values():
        if not isinstance(block, gr.Dataset) or getattr(block.preprocess, "_checks_choices", False):
            continue

        def preprocess(payload, _block=block, _preprocess=block.preprocess):
            if type(payload) is not int or not 0 <= payload < len(_block.raw_samples):
                raise refuse("There is no such example.")
            return _preprocess(payload)

        preprocess._checks_choices = True
        block.preprocess = preprocess


def check_payload_shapes(blocks, refuse) -> None:
    """A client's value that does not fit an input's data model (a list for an image, a FileData without a
    path) fails in Gradio's validation with an empty error. Each input of ``blocks`` answers it with
    ``refuse(message)`` (an exception to raise: a sentence naming the input) instead."""
    import pydantic

    for block in blocks.blocks.values():
        model = getattr(block, "data_model", None)
        if not isinstance(model, type) or getattr(model, "_checks_shape", False):
            continue
        label = getattr(block, "label", None) or type(block).__name__

        class Checked(model):  # the same model, whose validation failure is a sentence
            _checks_shape = True

            @classmethod
            def model_validate(cls, obj, *args, _model=model, _label=label, **kwargs):
                try:
                    return _model.model_validate(obj, *args, **kwargs)
                except pydantic.ValidationError:
                    raise refuse(f"The request's {_label} is not a value this page sends.") from None

        Checked.__name__ = model.__name__
        block.data_model = Checked


def check_value_counts(blocks, refuse) -> None:
    """A request with fewer values than its handler takes failed with an empty error (more were ignored); each
    now answers ``refuse(message)``, a sentence that says how many the action takes."""
    original = blocks.validate_inputs
    if getattr(original, "_checks_counts", False):
        return

    def validate_inputs(block_fn, inputs):
        if not isinstance(inputs, list) or len(inputs) != len(block_fn.inputs):
            given = len(inputs) if isinstance(inputs, list) else "no list of"
            raise refuse(f"The request has {given} values; this action takes {len(block_fn.inputs)}.")
        return original(block_fn, inputs)

    validate_inputs._checks_counts = True
    blocks.validate_inputs = validate_inputs


def check_choices(blocks, refuse) -> None:
    """A value that is not one of a picker's choices was answered with Gradio's message, which repeats the
    value (5,000 characters of it) and lists every choice; each picker now answers ``refuse(message)``, a
    sentence naming the picker."""
    import gradio as gr

    for block in blocks.blocks.values():
        if not isinstance(block, (gr.Dropdown, gr.Radio)) or getattr(block.preprocess, "_checks_choices", False):
            continue
        label = block.label or type(block).__name__

        def preprocess(payload, _preprocess=block.preprocess, _label=label):
            try:
                return _preprocess(payload)
            except gr.Error:
                raise refuse(f"The request's {_label} is not one of its choices.") from None

        preprocess._checks_choices = True
        block.preprocess = preprocess
