from marginopt.cli.main import main

main()
