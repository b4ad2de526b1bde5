"""``cycletools serve``: the Gradio web app."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys

HELP = """Start the web app: every registered domain on images (before/after compare, download),
video files (progress, audio and frame rate kept) and the browser's camera, and a Plugins tab
(weights status, model cards, fetching missing weights). It opens with horse2zebra selected (its
bundled generator, loaded before the page opens) and the example photo one click away; --plugin
NAME selects another domain, --weights FILE serves a generator file of yours without importing it
(for --plugin's domain, or on its own), and --variant picks which of each domain's generators the
app uses, as for translate. Local by default; --share asks Gradio
for a public link (needs internet). Requests are queued: --concurrency translations at once,
--queue-size more may wait, beyond that the page says the app is busy. Uploads, images (megapixels,
aspect ratio) and clips (seconds, also counted while decoding) are limited, and so is the disk that
uploads and results take together (--max-disk: when it is full, the oldest files no job uses are removed
once they are 5 minutes old, else the upload or job is refused); see docs/web-app.md, Limits."""


def add_parser(commands) -> None:
    from cycletools.cli.options import THREADS, Number

    parser = commands.add_parser("serve", help="start the web app (Gradio)", description=HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=Number(int, 1, 65535), default=7860, help="port (default: 7860)")
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    parser.add_argument("--device", default=None, help="cpu, cuda ... (default: auto)")
    parser.add_argument("--plugin", metavar="NAME", default=None,
                        help="the domain selected when the page opens (default: horse2zebra where a generator of it "
                             "is here)")
    parser.add_argument("--weights", metavar="FILE", default=None,
                        help="serve this generator file (.safetensors or .pth, or an hf://OWNER/REPO/PATH[@REVISION] "
                             "file fetched with 'cycletools weights fetch'): as --plugin's domain, or on its own as "
                             "'Your generator' (no reverse direction)")
    parser.add_argument("--variant", choices=("auto", "bundled", "full", "fast"), default="auto",
                        help="which of each domain's generators the app uses, as for translate (default: auto)")
    parser.add_argument("--max-upload", type=upload_size, default="200mb",
                        help="largest upload accepted: a whole number and b, kb, mb or gb (default: 200mb)")
    parser.add_argument("--max-disk", type=upload_size, default="2gb",
                        help="disk that uploads and results may take together, at least --max-upload: a whole "
                             "number and b, kb, mb or gb (default: 2gb)")
    parser.add_argument("--max-image-mp", type=Number(float, above=0, high=10_000), default=40.0, help="largest image in megapixels (default: 40)")
    parser.add_argument("--max-aspect-ratio", type=Number(float, 1, 10_000), default=16.0,
                        help="longest image side / shortest (default: 16)")
    parser.add_argument("--max-video-seconds", type=Number(float, above=0, high=10**6), default=600.0, help="longest clip (default: 600)")
    parser.add_argument("--threads", type=THREADS, metavar="N", default=None,
                        help="CPU threads for the generators (default: the physical cores)")
    parser.add_argument("--allow-downloads", action=argparse.BooleanOptionalAction, default=None,
                        help="let a client make the server download official weights (the Plugins tab's fetch "
                             "button); default: allowed when the app listens on loopback only, off with --share or "
                             "another --host")
    parser.add_argument("--concurrency", type=Number(int, 1, 256), default=1, help="translations at once (default: 1)")
    parser.add_argument("--queue-size", type=Number(int, 0, 100_000), default=16, help="requests that may wait (default: 16)")
    parser.set_defaults(handler=run_serve)


def loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def upload_size(text: str) -> str:
    """An argparse type: ``200mb``, ``5 GB``... (what Gradio's max_file_size reads), at least one byte."""
    from cycletools.utils.sizes import parse_size

    try:
        parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.replace(" ", "").lower()


def check_sizes(args: argparse.Namespace) -> None:
    """--max-disk must hold at least one upload of --max-upload."""
    from cycletools.errors import UsageError
    from cycletools.utils.sizes import parse_size

    if parse_size(args.max_disk) < parse_size(args.max_upload):
        raise UsageError(f"--max-disk {args.max_disk} is smaller than --max-upload {args.max_upload}: the app "
                         "could not keep even one upload")


def run_serve(args: argparse.Namespace) -> int:
    from cycletools.errors import CycletoolsError

    check_sizes(args)  # before Gradio loads (seconds)
    try:
        from cycletools import app as web
    except ImportError as exc:
        raise CycletoolsError(f"the web app needs Gradio ({exc.name} is missing): pip install 'cycletools[app]'") from None
    from cycletools.utils.devices import set_threads
    from cycletools.utils.sizes import parse_size

    set_threads(args.threads)
    limits = web.ServeLimits(max_upload=args.max_upload, max_disk=parse_size(args.max_disk), max_image_pixels=int(args.max_image_mp * 1e6),
                             max_aspect_ratio=args.max_aspect_ratio,
                             max_video_seconds=args.max_video_seconds, queue_size=args.queue_size,
                             concurrency=args.concurrency,
                             allow_downloads=args.allow_downloads if args.allow_downloads is not None
                             else loopback(args.host) and not args.share)
    served = web.Served(plugin=args.plugin, weights=args.weights, variant=args.variant)
    built = web.build_app(args.device, limits, served)

    def stop(signum, frame) -> None:
        """Ctrl-C or SIGTERM: jobs start cancelling at once, while Gradio closes its server. A second
        signal (a supervisor's, a process group's) changes nothing: the stop is already under way."""
        if not web.stopping():
            web.cancel_jobs()
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"cycletools web app on http://{args.host}:{args.port} (Ctrl-C stops it); temp folder {built.workdir}",
          flush=True)
    try:
        built.demo.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=False,
                          quiet=True, theme=web.theme(), footer_links=["api"], ssr_mode=False,
                          **web.launch_options(built, limits))
    except OSError as exc:
        raise CycletoolsError(f"cannot serve on {args.host}:{args.port} ({exc})") from None
    finally:
        # Gradio returns here on Ctrl-C or SIGTERM with its server closed; running jobs are cancelled and
        # waited for, so that no decode, encode or model thread is cut off when the process exits.
        if not web.stop_jobs(timeout=30):
            print("cycletools serve: a job did not stop within 30 s", file=sys.stderr)
        shutil.rmtree(built.workdir, ignore_errors=True)
    print("cycletools web app stopped", flush=True)
    return 0
