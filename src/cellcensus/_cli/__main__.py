"""``python -m cellcensus._cli`` runs the command line."""

from cellcensus._cli import main

main()
