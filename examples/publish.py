"""Publish a defended checkpoint (an `hf-forget text/vision/forget` output) with its evaluation model card.

    python examples/publish.py defended --repo_id you/clip-defended --names @names.txt --local_dir staged
    python examples/publish.py defended --repo_id you/clip-defended --names @names.txt   # one Hub commit

The names are only used to scan every staged file before anything is written; they are never stored.
"""

import argparse

from hf_forget.config import parse_names
from hf_forget.publish.pusher import push_defended


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--repo_id", required=True)
    parser.add_argument("--names", action="append", required=True)
    parser.add_argument("--report", help="report.json of an evaluation (e.g. `hf-forget demo`) to publish too")
    parser.add_argument("--local_dir", help="write the exact tree that would be uploaded, with no network")
    parser.add_argument("--create_pr", action="store_true")
    args = parser.parse_args()
    result = push_defended(
        args.path,
        args.repo_id,
        names=parse_names(args.names),
        report=args.report,
        local_dir=args.local_dir,
        create_pr=args.create_pr,
    )
    print(result)


if __name__ == "__main__":
    main()
