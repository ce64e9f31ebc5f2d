from meshhost.cli import main

main()
