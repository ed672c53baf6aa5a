from labspin.cli import main

main()
