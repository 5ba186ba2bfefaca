from autolog.cli import main

main()
