"""``python -m cellcensus`` runs the command line."""

from cellcensus._cli import main

main()
