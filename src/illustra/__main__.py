from illustra.cli import main

main()
