"""The trainer's tools in one command: ``python -m trainer <kommando> [...]`` (what `make review`,
`make add`, `make retrain`, `make activate`, `make rollback`, `make status`, `make report` and
`make purge` run). Every command's own help: ``python -m trainer <kommando> --help``.

The same operations are behind the workbench in the browser (web/workbench.py); this entry is
for a trainer or an operator with a terminal.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# command -> (module, arguments put in front, what it does in Danish)
COMMANDS: Dict[str, Tuple[str, Tuple[str, ...], str]] = {
    "review": ("trainer.review", (), "eksportér det, assistenten havde svært ved, til et regneark"),
    "add": ("trainer.add_examples", (), "læg de gennemgåede eksempler ind i træningsdata"),
    "retrain": ("trainer.retrain", (), "træn en ny model og sammenlign den med den i drift"),
    "activate": ("trainer.serving", ("activate",), "sæt den nye model i drift"),
    "rollback": ("trainer.serving", ("rollback",), "gå tilbage til den forrige model"),
    "status": ("trainer.serving", ("status",), "hvilke modeller er i drift, forrige og kandidat"),
    "path": ("trainer.serving", ("path",), "stien til modellen, som assistenten skal starte med"),
    "report": ("trainer.report", (), "opfølgningsrapport for en periode (HTML og JSON)"),
    "purge": ("trainer.purge", (), "slet samtaler, der er ældre end AF_RETENTION_DAYS"),
}


def usage() -> str:
    lines = ["Brug: python -m trainer <kommando> [...]", "", "Kommandoer:"]
    lines += [f"  {name:<9} {text}" for name, (_, _, text) in COMMANDS.items()]
    return "\n".join(lines)


def command(name: str) -> Callable[[List[str]], int]:
    module_name, front, _ = COMMANDS[name]
    main = importlib.import_module(module_name).main
    return lambda argv: main([*front, *argv])


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    if args[0] not in COMMANDS:
        print(f"Ukendt kommando: {args[0]}\n\n{usage()}", file=sys.stderr)
        return 2
    return int(command(args[0])(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
