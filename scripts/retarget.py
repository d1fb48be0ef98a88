"""Point the book at another repository and branch (for a fork or a course).

    python scripts/retarget.py ORG/NAME BRANCH [--notebooks-branch NAME] [--root DIR]

Rewrites the one setting that names the repository (``repository.url`` and
``repository.branch`` in ``_config.yml``) and the install URL in every chapter's setup cell,
so that a notebook installs ``throughtime`` from the same place (whenever Python cannot import
it: Colab, a downloaded notebook, a fresh Jupyter). The launch buttons open the reader
notebooks (``make notebooks``), which the workflow publishes to the branch
``html_theme_options.repository_branch`` of the same repository; ``--notebooks-branch``
renames that branch. ``tests/test_repository.py`` fails if the settings disagree.
The setup cell's full text lives in ``scripts/setup_cell.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
BRANCH_PATTERN = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_./-]*$")
INSTALL_PATTERN = re.compile(r"git\+https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[^\"'\s]+")


def install_url(repo: str, branch: str) -> str:
    """The pip URL of the library for a repository ``org/name`` at ``branch``."""
    return f"git+https://github.com/{repo}@{branch}"


def retarget_config(text: str, repo: str, branch: str, notebooks_branch: str | None = None
                    ) -> str:
    """Rewrite ``repository.url`` and ``repository.branch`` in the text of ``_config.yml``,
    and, when ``notebooks_branch`` is given, the reader notebooks' branch."""
    text, n_url = re.subn(
        r"(?m)^(  url:\s*)https://github\.com/\S+$", rf"\g<1>https://github.com/{repo}", text
    )
    text, n_branch = re.subn(r"(?m)^(  branch:\s*)\S+$", rf"\g<1>{branch}", text)
    if n_url != 1 or n_branch != 1:
        raise ValueError(
            "_config.yml must hold exactly one 'repository:' block with 'url:' and 'branch:' "
            f"lines; found {n_url} url line(s) and {n_branch} branch line(s)"
        )
    if notebooks_branch is not None:
        text, n_launch = re.subn(r"(?m)^(\s+repository_branch:\s*)\S+$",
                                 rf"\g<1>{notebooks_branch}", text)
        if n_launch != 1:
            raise ValueError("_config.yml must hold exactly one 'repository_branch:' line (the "
                             f"reader notebooks' branch); found {n_launch}")
    return text


def retarget_notebook(text: str, repo: str, branch: str) -> tuple[str, int]:
    """Rewrite the install URL in every code cell of a notebook; return (text, count)."""
    notebook = json.loads(text)
    count = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        new_source, n = INSTALL_PATTERN.subn(install_url(repo, branch), source)
        if n:
            cell["source"] = new_source.splitlines(keepends=True)
            count += n
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", help="GitHub repository as ORG/NAME")
    parser.add_argument("branch", help="branch that the setup cells install the library from")
    parser.add_argument("--notebooks-branch",
                        help="branch the reader notebooks are published to (launch buttons)")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    if not REPO_PATTERN.match(args.repo):
        parser.error(f"repo must look like ORG/NAME, got {args.repo!r}")
    if not BRANCH_PATTERN.match(args.branch):
        parser.error(f"branch must be a git branch name, got {args.branch!r}")
    if args.notebooks_branch is not None and (not BRANCH_PATTERN.match(args.notebooks_branch)
                                              or args.notebooks_branch == args.branch):
        parser.error("--notebooks-branch must be a git branch name other than the book's "
                     f"branch (publishing there would replace the sources), got "
                     f"{args.notebooks_branch!r}")

    config = args.root / "_config.yml"
    config.write_text(retarget_config(config.read_text(), args.repo, args.branch,
                                      args.notebooks_branch))
    print(f"{config.name}: repository https://github.com/{args.repo}, branch {args.branch}"
          + (f", reader notebooks on {args.notebooks_branch}" if args.notebooks_branch else ""))
    for path in sorted((args.root / "chapters").glob("*.ipynb")):
        text, count = retarget_notebook(path.read_text(), args.repo, args.branch)
        if count == 0:
            print(f"warning: {path.name} has no install line to rewrite", file=sys.stderr)
            continue
        path.write_text(text)
        url = install_url(args.repo, args.branch)
        print(f"{path.relative_to(args.root)}: the setup cell installs {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
