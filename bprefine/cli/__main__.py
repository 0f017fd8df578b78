from bprefine.cli import main

main()
